"""How the lock layer names its files under ``locks/``, and the ticket queue's "choosing" prefix.

Lean core: this imports nothing, so ``gx status``'s refresh (:mod:`gitxact.gx.refresh`),
whose import set tests/test_gx.py pins, takes a worktree's lock by the same names as
:mod:`gitxact.locking.locks` and sees a queue the way :mod:`gitxact.locking.tickets`
writes it. The rich modules import these; nobody repeats them.
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

_ID_FIRST = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_ID_CHARS = _ID_FIRST | frozenset(".-")


def plain_worktree_id(worktree_id: str) -> bool:
    """Whether *worktree_id* names its lock as it stands; git keeps non-ASCII letters
    (``wörk``) and other characters no lock file name may carry, and such ids are hashed.

    The spelling :func:`gitxact.util.names.validate_name` asks of a name (tests/test_gx.py
    holds the two together), as a predicate: that module is not on ``gx status``'s path.
    """
    return (
        1 <= len(worktree_id) <= WORKTREE_ID_LIMIT
        and worktree_id[0] in _ID_FIRST
        and set(worktree_id) <= _ID_CHARS
        and ".." not in worktree_id
        and not worktree_id.endswith((".lock", "."))
    )


def worktree_slug(name: str) -> str:
    """The slug (file name stem) of the lock of worktree *name* (a plain id, or its hash name)."""
    return WORKTREE_PREFIX + name


def resource_slug(name: str) -> str:
    return RESOURCE_PREFIX + name
