"""The kernel lock under every gitxact lock: ``flock(2)`` on a file we own.

A ``flock`` belongs to the open file description, so the kernel drops it the instant
its process dies, however it dies (SIGKILL included): a crashed holder can never leave
a stale lock behind. Shared and exclusive are the kernel's own ``LOCK_SH`` and
``LOCK_EX``, which is all the repository's reader/writer lock needs.

This used to be filelock (a ``FileLock`` per lock, a SQLite ``ReadWriteLock`` for the
repository). ``import filelock`` cost more than a whole interpreter start-up, on every
``gx`` and ``gitxact`` call, for one system call that this module makes itself. gitxact runs
on POSIX only (it relies on fcntl elsewhere too), so filelock's portability bought
nothing here. Lock files are created no-follow, private, and never unlinked (unlinking
a flock file lets two processes each lock a different inode of the "same" lock).
"""

from __future__ import annotations

import fcntl
import os
import time

from gitxact.util.files import FILE_MODE, open_state_file

_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def try_lock(fd: int, *, shared: bool = False) -> bool:
    """Take the flock on *fd* without waiting; ``False`` if someone else holds it."""
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


class KernelLock:
    """One lock file, taken shared or exclusive, one holder per instance.

    Two instances in one process exclude each other like two processes do (each has its
    own open file description), which is what per-thread locks need.
    """

    def __init__(self, path: str | os.PathLike[str], mode: int = FILE_MODE) -> None:
        self.path = os.fspath(path)
        self.mode = mode  # the file's, when this instance creates it (util/files.file_mode_in)
        self._fd: int | None = None

    @property
    def is_locked(self) -> bool:
        return self._fd is not None

    def try_acquire(self, *, shared: bool = False) -> bool:
        """Lock now or return ``False``; raises ``OSError`` when the file cannot be opened."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this instance")
        fd = open_state_file(self.path, _OPEN_FLAGS, self.mode)
        if try_lock(fd, shared=shared):
            self._fd = fd
            return True
        os.close(fd)
        return False

    def acquire(self, timeout: float, *, shared: bool = False, poll: float = 0.01) -> bool:
        """Wait up to *timeout* seconds (negative: for ever); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        while not self.try_acquire(shared=shared):
            if timeout >= 0 and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def release(self) -> None:
        """Let go (closing the descriptor drops the flock); a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
