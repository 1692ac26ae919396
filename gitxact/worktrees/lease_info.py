"""The documents of ``worktree list`` (and the leases in ``status``), without pydantic.

Both commands read every lease and must not pay several interpreter start-ups for importing
pydantic (issue 14), so these are :class:`~gitxact.core.plain.PlainDocument` classes, the
one definition of these documents (docs/commands.md documents their fields, and
tests/test_json_shapes.py holds the two together). Never a token or its hash.
"""

from __future__ import annotations

from typing import ClassVar

from gitxact.core.plain import PlainDocument, PlainModel


class OwnerDoc(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("pid", "host", "alive")
    __slots__ = FIELDS

    def __init__(self, *, pid: int, host: str, alive: bool | None) -> None:
        self.pid = pid
        self.host = host
        #: ``True`` only when provably alive (this host, same pid and start time), ``False``
        #: when provably gone, ``None`` when it cannot be told from here (another host, or no
        #: start time to compare).
        self.alive = alive


class LeaseInfo(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = (
        "agent",
        "path",
        "branch",
        "base",
        "phase",
        "worktree_id",
        "owner",
        "created",
        "age",
        "heartbeat",
        "heartbeat_age",
        "ttl",
        "expired",
        "live",
        "folder_missing",
        "registered",
        "locked",
        "dirty",
        "ahead",
        "behind",
        "warning",
        "ports",
        "conflicts",
        "sparse",
        "disk_bytes",
        "disk_age",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        *,
        agent: str,
        path: str,
        branch: str,
        base: str,
        phase: str,
        worktree_id: str | None,
        owner: OwnerDoc,
        created: float,
        age: float,
        heartbeat: float,
        heartbeat_age: float,
        ttl: float,
        expired: bool,
        live: bool,
        folder_missing: bool,
        registered: bool,
        locked: bool,
        dirty: bool | None = None,
        ahead: int | None = None,
        behind: int | None = None,
        warning: str | None = None,
        ports: list[int] | None = None,
        conflicts: dict[str, list[str]] | None = None,
        sparse: list[str] | None = None,
        disk_bytes: int | None = None,
        disk_age: float | None = None,
    ) -> None:
        self.agent = agent
        self.path = path
        self.branch = branch
        self.base = base
        self.phase = phase
        self.worktree_id = worktree_id
        self.owner = owner
        self.created = float(created)
        self.age = float(age)
        self.heartbeat = float(heartbeat)
        self.heartbeat_age = float(heartbeat_age)
        self.ttl = float(ttl)
        self.expired = expired
        self.live = live
        self.folder_missing = folder_missing
        self.registered = registered
        self.locked = locked
        #: ``None`` when it was not looked at (no ``--dirty``) or could not be read (folder
        #: missing, git failed, the worktree being checked out or emptied).
        self.dirty = dirty
        self.ahead = ahead
        self.behind = behind
        #: What a person should know about a lease that is kept anyway: a live owner whose
        #: heartbeat is past its TTL (reap never ends it; only a warning).
        self.warning = warning
        #: Loopback ports allocated to the lease (``.gitxact.toml``'s ``lease.ports``).
        self.ports: list[int] = [] if ports is None else ports
        #: Asked for (``--conflicts``): the target and the other live leases its branch would
        #: conflict with, each with the paths (empty: none). ``None``: not looked at.
        self.conflicts = conflicts
        #: The folders a sparse lease checks out (cone mode); empty: every file.
        self.sparse: list[str] = [] if sparse is None else sparse
        #: Bytes its folder took on disk as last measured (at acquire, or ``--sizes``), and how
        #: many seconds ago; ``None``: never measured (gitxact.worktrees.disk).
        self.disk_bytes = disk_bytes
        self.disk_age = disk_age


class LeaseListDoc(PlainDocument):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("leases", "disk_bytes")
    __slots__ = FIELDS

    def __init__(self, *, leases: list[LeaseInfo] | None = None) -> None:
        self.leases: list[LeaseInfo] = [] if leases is None else leases
        #: The leases' recorded sizes added up (those never measured count nothing).
        self.disk_bytes = disk_total(self.leases)


def disk_total(infos: list[LeaseInfo]) -> int:
    """The recorded sizes of *infos* added up: ``worktree list``'s and ``status``'s total."""
    return sum(info.disk_bytes or 0 for info in infos)
