"""``gx status`` refreshes the index as ``git status`` does, whenever its worktree is free.

git's read-only commands with an optional lock (``status``) take ``index.lock`` if it is
free to write back refreshed stat data, so the next command need not hash every file
again. gx runs read-only commands with ``GIT_OPTIONAL_LOCKS=0`` so they never take
``index.lock`` under a writer gx has let in. Here the worktree lock is tried *without
waiting*: when it is free, git runs as a child with its optional locks on, under that
lock, exactly as plain git would behave; when anyone holds or waits for it, this returns
``None`` and the caller execs git with the refresh switched off (the output is the same;
only the cache write is skipped).

The repository is located without running git (that would cost a git process on every
``gx status``): the ``.git`` folder or file found walking up from the current folder,
as git finds it (stopping below ``GIT_CEILING_DIRECTORIES`` as git does). Whatever could
make git look elsewhere (``GIT_DIR`` and the other locating variables, ``-C``,
``--git-dir``, ``--work-tree``, a filesystem boundary) makes this step back and leave the
refresh off: never a lock in the wrong place. The lock is the worktree's kernel lock
alone (:func:`try_hold`), and the child is started with ``posix_spawn`` and waited for,
the way a shell does (Ctrl-C is git's; SIGTERM/SIGHUP are passed on), without the
``subprocess`` module.
"""

from __future__ import annotations

import os

from gitxact.errors import GitxactError
from gitxact.git import lite, locate
from gitxact.locking import kernel, naming
from gitxact.util.files import ensure_private_dir, open_state_file

_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from gitxact.gx.cmdline import Invocation


def lock_name(worktree_id: str) -> str | None:
    """The worktree lock's slug, as :func:`gitxact.locking.locks.worktree_key` names it;
    ``None`` for an id it would hash (then no refresh: hashing is not worth its import here)."""
    return naming.worktree_slug(worktree_id) if naming.plain_worktree_id(worktree_id) else None


def try_hold(lock_dir: str, worktree_id: str) -> int | None:
    """The worktree's kernel lock, taken without waiting and without a ticket; ``None`` if not now.

    No ticket: a refresh is an optional favour, never worth a place in the queue. It is
    taken only when nobody is queued (any live ticket, or one being chosen, means someone
    works here or is about to), so it never overtakes a waiter; a writer that queues
    while it runs finds the kernel lock busy and is served the moment git exits.
    """
    name = lock_name(worktree_id)
    if name is None:
        return None
    queue = os.path.join(lock_dir, name + naming.QUEUE_SUFFIX)
    try:
        ensure_private_dir(os.path.dirname(lock_dir))
        mode = ensure_private_dir(lock_dir)
        if any(_queued(os.path.join(queue, entry)) for entry in _entries(queue)):
            return None
        fd = open_state_file(os.path.join(lock_dir, name + naming.LOCK_SUFFIX), _LOCK_FLAGS, mode)
    except (OSError, GitxactError):
        return None
    if kernel.try_lock(fd):
        return fd
    os.close(fd)
    return None


def _entries(queue: str) -> list[str]:
    try:
        return os.listdir(queue)
    except FileNotFoundError:
        return []


def _queued(ticket: str) -> bool:
    """A ticket whose owner lives (it keeps a flock on it); a dead one is the lock layer's to clear."""
    try:
        fd = os.open(ticket, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    try:
        if kernel.try_lock(fd):
            kernel.unlock(fd)
            return os.path.basename(ticket).startswith(naming.CHOOSING_PREFIX)  # a chooser not yet locked: busy
        return True
    finally:
        os.close(fd)


def try_run(args: list[str], given: Invocation) -> int | None:
    """Run ``git ARGS`` with its optional locks, under a free worktree lock; ``None`` if not now."""
    if given.locating:
        return None
    try:
        found = locate.locate(os.getcwd())
    except FileNotFoundError:
        return None
    if found is None:
        return None
    fd = try_hold(os.path.join(found.common_dir, "gitxact", "locks"), found.worktree_id)
    if fd is None:
        return None  # someone works here: git's refresh would take index.lock under them
    try:
        return _spawn_and_wait(args, lite.passthrough_env())
    finally:
        os.close(fd)


def _spawn_and_wait(args: list[str], env: dict[str, str]) -> int:
    pid = os.posix_spawn(lite.real_git(), ["git", *args], env)
    return lite.wait_forwarding(pid)
