"""Named locks on this host's files: the resource locks of :mod:`gitxact.locking.locks`.

The default backend. A named lock is the resource lock of the same name, so it queues
first come, first served, shows in ``gitxact status`` and dies with its holder exactly
like gitxact's own resource locks; it only coordinates the processes of this host.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from gitxact.core.repo import LOCKS_DIR
from gitxact.errors import InvalidNameError
from gitxact.locking.locks import resource_key
from gitxact.locking.tickets import EXCLUSIVE, SHARED, Mode, Party
from gitxact.util.names import validate_name

if TYPE_CHECKING:
    from collections.abc import Callable

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


class FileGrant:
    """A named lock held through this host's kernel locks: it cannot be lost while its process lives.

    So it carries no fencing token (``fence`` is ``None``): the only holder that could act
    after losing it is a dead one's orphaned descendant, which a token handed to the dead
    process would not stop either.
    """

    __slots__ = ("fence", "mode", "name", "waited")

    def __init__(self, name: str, mode: Mode, waited: float) -> None:
        self.name = name
        self.mode = mode
        self.waited = waited
        self.fence: int | None = None

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
        self._repo.store.ensure(LOCKS_DIR)
        with self._repo.locks.hold(key, check_mode(mode), timeout) as grant:
            yield FileGrant(name, grant.mode, grant.waited)

    def holders(self, name: str) -> list[Party]:
        return [p for p in self._repo.locks.parties(resource_key(validate_lock_name(name))) if p.holding]

    def close(self) -> None:
        return None
