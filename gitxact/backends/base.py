"""What a coordination backend offers, whatever stores it: tracker entries and named locks.

The file backend keeps them in ``<common-dir>/gitxact`` (one host); the PostgreSQL one in
a database that every host of a fleet reaches. Both are driven through the shapes
here, so the tracker, a landing queue and the CLI never ask which one they have.
Nothing here imports psycopg or pydantic: ``gitxact tracker incr`` on files stays light.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, Protocol

from gitxact.errors import EXIT_TEMPFAIL, GitxactError, UsageError
from gitxact.util import inputs

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Callable

    from gitxact.errors import LockLostError
    from gitxact.locking.tickets import Mode, Party

MAX_VALUE_BYTES = 1024 * 1024


class BackendUnavailableError(GitxactError):
    """The configured database cannot be reached (exit 75, like a busy lock: try again later).

    Never answered by falling back to the files of this host: two hosts coordinating
    through two different stores would each believe they hold what the other holds.
    """

    exit_code = EXIT_TEMPFAIL


class TrackerEntry:
    """One key's value (any JSON), its version (1, 2, ...), when and by which agent it was set."""

    __slots__ = ("by", "updated", "value", "version")

    def __init__(self, *, value: Any, version: int, updated: float, by: str | None = None) -> None:
        self.value = value
        self.version = version
        self.updated = updated
        self.by = by

    def model_dump(self, *, mode: str = "json") -> dict[str, Any]:
        return {"value": self.value, "version": self.version, "updated": self.updated, "by": self.by}

    @classmethod
    def model_validate(cls, data: Any) -> TrackerEntry:
        """Checked by hand (see ``gitxact.tracker.TrackerState``): a forged or damaged entry is a ``ValueError``."""
        if not isinstance(data, dict) or not {"value", "version", "updated"} <= data.keys() <= _ENTRY_FIELDS:
            raise ValueError(
                f"an entry must have the fields value, version, updated (and by): {sorted(data)!r}"
                if isinstance(data, dict)
                else "an entry must be an object"
            )
        version, updated, by = data["version"], data["updated"], data.get("by")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"version must be an integer >= 1, not {version!r}")
        if isinstance(updated, bool) or not isinstance(updated, int | float) or not math.isfinite(updated):
            raise ValueError(f"updated must be a number, not {updated!r}")
        if by is not None and not isinstance(by, str):
            raise ValueError(f"by must be a string or null, not {by!r}")
        return cls(value=data["value"], version=version, updated=float(updated), by=by)


_ENTRY_FIELDS = frozenset({"value", "version", "updated", "by"})


def check_value(value: Any) -> None:
    """A value either backend can store and give back unchanged: finite JSON, at most 1 MiB,
    nested at most :data:`~gitxact.util.inputs.MAX_DEPTH` deep, no NUL (``jsonb`` refuses it)."""
    inputs.check_json(value, "value")
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"value cannot be stored as JSON: {exc}") from exc
    if len(encoded) > MAX_VALUE_BYTES:
        raise inputs.InvalidInputError(f"value is larger than {MAX_VALUE_BYTES} bytes")
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError("value must be finite")


class TrackerBackend(Protocol):
    """The tracker's operations; each is atomic on its own (one locked file write, one SQL statement)."""

    @property
    def path(self) -> str:
        """Where the entries live, for people: a file, or the database and namespace."""

    def get(self, key: str | None = None) -> dict[str, TrackerEntry]:
        """All entries, or the one named *key* (missing: exit 1)."""

    def set(self, key: str, value: Any, expect_version: int | None = None) -> TrackerEntry:
        """Set *key*; with *expect_version*, only if it is still at that version (0: absent)."""

    def incr(self, key: str, amount: int = 1) -> TrackerEntry:
        """Add *amount* to the integer at *key* (absent: 0)."""

    def delete(self, key: str, expect_version: int | None = None) -> None:
        """Remove *key* (missing: exit 1), optionally only at *expect_version*."""


class NamedGrant(Protocol):
    """A named lock held: what the holder may ask while it works under it."""

    name: str
    mode: Mode
    waited: float

    @property
    def fence(self) -> int | None:
        """This grant's fencing token: larger than every earlier grant's of the same name, so
        a resource that remembers the largest it saw can refuse a holder that lost the lock."""

    def check(self) -> None:
        """Raise :class:`~gitxact.errors.LockLostError` if the lock is no longer held (its session ended)."""


class NamedLocks(Protocol):
    """Locks any process of the project can take by name: on files, this host's processes;
    on PostgreSQL, every host's. What a landing queue serializes on.

    ``hold`` waits first come, first served, up to *timeout* seconds (``None``: the
    ``gitxact.lockTimeout`` default; negative: forever), then raises
    :class:`~gitxact.errors.LockTimeoutError` (exit 75) naming the holders (host, pid,
    agent, command). A holder that dies releases its locks: at once on this host, and on
    PostgreSQL within the keepalive bound when a whole host vanishes.
    """

    kind: str

    def hold(
        self,
        name: str,
        mode: Mode = ...,
        timeout: float | None = None,
        *,
        on_lost: Callable[[LockLostError], None] | None = None,
    ) -> contextlib.AbstractContextManager[NamedGrant]:
        """Hold lock *name* in *mode* (``"exclusive"`` or ``"shared"``) for a ``with`` block.

        *on_lost* is called, from another thread, if the holder gives the lock up before the
        block ends (PostgreSQL: its session could not be confirmed within the holder's bound).
        """

    def holders(self, name: str) -> list[Party]:
        """Who holds lock *name* now (holders only, oldest first)."""

    def close(self) -> None:
        """Let go of connections; held locks must have been released."""
