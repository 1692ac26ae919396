"""How the lock layer names its files under ``locks/``, the ticket queue's "choosing" prefix,
and the spelling of a name gitxact accepts.

Lean core: this imports nothing, so ``gx status``'s refresh (:mod:`gitxact.gx.refresh`),
whose import set tests/test_gx.py pins, takes a worktree's lock by the same names as
:mod:`gitxact.locking.locks` and sees a queue the way :mod:`gitxact.locking.tickets`
writes it. The rich modules import these; nobody repeats them.

The spelling (:func:`spelled`, :func:`ref_safe`) is the rule every name given to gitxact
follows (agents, transactions, savepoints, lock names: :mod:`gitxact.util.names` checks
them with it and says what is wrong); it is defined here because a lock file is named by
it too, and ``gx status`` must tell a plain worktree id without importing that module.
"""

from __future__ import annotations

#: A hidden ticket being chosen (created, not yet flock'd): someone is about to queue.
CHOOSING_PREFIX = ".new-"
#: A lock's kernel-lock file, its ticket queue, and its nested grants: ``<slug><suffix>``.
LOCK_SUFFIX = ".lock"
QUEUE_SUFFIX = ".q"
NEST_SUFFIX = ".nest"
REPOSITORY_SLUG = "repo"
WORKTREE_PREFIX = "worktree."
RESOURCE_PREFIX = "resource."
#: A worktree id longer than this is named by its hash.
WORKTREE_ID_LIMIT = 100

# Character sets, not regular expressions: this module is on gx's paths, which do not
# import re (and the enum it brings).
# start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")
#: A name's first character (ASCII only), and those that may follow it.
NAME_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
NAME_CHARS = NAME_FIRST + ".-"


def spelled(text: str, limit: int, chars: str = NAME_CHARS) -> bool:
    """*text* is 1-*limit* characters: one of :data:`NAME_FIRST`, then any of *chars*."""
    return 1 <= len(text) <= limit and text[0] in NAME_FIRST and not text.strip(chars)


def ref_safe(name: str) -> bool:
    """No ``..``, no trailing ``.``, no ``.lock`` suffix: git refuses them in ref names."""
    return ".." not in name and not name.endswith((".lock", "."))


def plain_worktree_id(worktree_id: str) -> bool:
    """Whether *worktree_id* names its lock as it stands: a name's spelling; git keeps
    non-ASCII letters (``wörk``) and other characters no lock file name may carry, and such
    ids are hashed."""
    return spelled(worktree_id, WORKTREE_ID_LIMIT) and ref_safe(worktree_id)


def worktree_slug(name: str) -> str:
    """The slug (file name stem) of the lock of worktree *name* (a plain id, or its hash name)."""
    return WORKTREE_PREFIX + name


def resource_slug(name: str) -> str:
    return RESOURCE_PREFIX + name
