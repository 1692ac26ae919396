"""How the lock layer names its files under ``locks/``, and the ticket queue's "choosing" prefix.

Lean core: this imports only the spelling of names (:mod:`gitxact.util.files`, already on
every lean path), so ``gx status``'s refresh (:mod:`gitxact.gx.refresh`), whose import
set tests/test_gx.py pins, takes a worktree's lock by the same names as
:mod:`gitxact.locking.locks` and sees a queue the way :mod:`gitxact.locking.tickets`
writes it. The rich modules import these; nobody repeats them.
"""

from __future__ import annotations

from gitxact.util.files import ref_safe, spelled

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


def plain_worktree_id(worktree_id: str) -> bool:
    """Whether *worktree_id* names its lock as it stands: a name's spelling
    (:func:`gitxact.util.files.spelled`, as :func:`gitxact.util.names.validate_name` asks); git keeps
    non-ASCII letters (``wörk``) and other characters no lock file name may carry, and such
    ids are hashed."""
    return spelled(worktree_id, WORKTREE_ID_LIMIT) and ref_safe(worktree_id)


def worktree_slug(name: str) -> str:
    """The slug (file name stem) of the lock of worktree *name* (a plain id, or its hash name)."""
    return WORKTREE_PREFIX + name


def resource_slug(name: str) -> str:
    return RESOURCE_PREFIX + name
