"""Named locks on this host's files: the resource locks of :mod:`gitxact.locking.locks`.

The default backend. A named lock is the resource lock of the same name, so it queues
first come, first served, shows in ``gitxact status`` and dies with its holder exactly
like gitxact's own resource locks; it only coordinates the processes of this host.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gitxact.core.repo import LOCKS_DIR
from gitxact.errors import InvalidNameError, StateError
from gitxact.locking.locks import resource_key
from gitxact.locking.tickets import EXCLUSIVE, SHARED, Mode, Party
from gitxact.util.names import validate_name

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from gitxact.core.repo import Repo
    from gitxact.errors import LockLostError

#: Resource locks gitxact takes for files of this host; a named lock may not borrow them,
#: since on PostgreSQL the same name would stop guarding those files.
RESERVED = frozenset({"hooks", "leases", "meta", "recover", "state", "tracker"})


def validate_lock_name(name: str) -> str:
    """A named lock's name: a resource name (it names files here) that gitxact does not use itself."""
    validate_name(name, "lock name", limit=100)
    if name in RESERVED or name.startswith("git."):
        raise InvalidNameError(
            f"lock name {name!r} is reserved for gitxact's own files",
            hint=f"pick another name (reserved: {', '.join(sorted(RESERVED))}, git.*)",
        )
    return name


def check_mode(mode: str) -> Mode:
    if mode not in (SHARED, EXCLUSIVE):
        raise InvalidNameError(f"lock mode must be {SHARED!r} or {EXCLUSIVE!r}, not {mode!r}")
    return mode


def next_fence(folder: Path, name: str, *, advance: bool = True) -> int:
    """The next fencing token of named lock *name* (with *advance*; else the last one given).

    A live holder never loses a kernel lock, but what it started can outlive it (a
    grandchild that ``PR_SET_PDEATHSIG`` does not reach), so grants are numbered here as
    on PostgreSQL. The number is one 21-byte record at offset 0 of ``fence.<name>``,
    rewritten in place and fsynced under an ``flock`` of that file (shared holders number
    their grants one at a time): a write within one disk sector, which devices write
    whole (PostgreSQL keeps ``pg_control`` under 512 bytes for the same reason). A
    record that is not a number is refused, never read as 0: numbering again from 1
    would let a stale holder through.
    """
    path = folder / f"fence.{name}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:  # a symlink planted there (ELOOP), permissions
        raise StateError(path, f"cannot open the fencing token: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        if text and not (text.isascii() and text.isdigit()):
            raise StateError(path, f"not a fencing token: {text[:40]!r}", hint="restore it, or remove it knowingly")
        last = int(text) if text else 0
        if not advance:
            return last
        os.pwrite(fd, f"{last + 1:020d}\n".encode(), 0)
        os.fsync(fd)
        return last + 1
    finally:
        os.close(fd)


class FileGrant:
    """A named lock held through this host's kernel locks: it cannot be lost while its process lives."""

    __slots__ = ("fence", "mode", "name", "waited")

    def __init__(self, name: str, mode: Mode, waited: float, fence: int) -> None:
        self.name = name
        self.mode = mode
        self.waited = waited
        #: As on PostgreSQL (a nested or inherited grant has its holder's number).
        self.fence = fence

    def check(self) -> None:
        return None


class FileNamedLocks:
    """Named locks of one repository on this host (``<common-dir>/gitxact/locks/resource.<name>.*``)."""

    kind = "files"

    def __init__(self, repo: Repo) -> None:
        self._repo = repo

    @contextlib.contextmanager
    def hold(
        self,
        name: str,
        mode: Mode = EXCLUSIVE,
        timeout: float | None = None,
        *,
        on_lost: Callable[[LockLostError], None] | None = None,
    ) -> Iterator[FileGrant]:
        """*on_lost* is never called: a kernel lock ends only with its process."""
        del on_lost
        key = resource_key(validate_lock_name(name))
        folder = self._repo.store.ensure(LOCKS_DIR) / LOCKS_DIR
        with self._repo.locks.hold(key, check_mode(mode), timeout) as grant:
            fence = next_fence(folder, name, advance=not (grant.reentrant or grant.inherited))
            yield FileGrant(name, grant.mode, grant.waited, fence)

    def holders(self, name: str) -> list[Party]:
        return [p for p in self._repo.locks.parties(resource_key(validate_lock_name(name))) if p.holding]

    def close(self) -> None:
        return None
