"""What a coordination backend offers, whatever stores it: tracker entries and named locks.

The file backend keeps them in ``<common-dir>/gitxact`` (one host); the PostgreSQL one in
a database that every host of a fleet reaches. Both are driven through the shapes
here, so the tracker, a landing queue and the CLI never ask which one they have.
Nothing here imports psycopg or pydantic: ``gitxact tracker incr`` on files stays light.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gitxact.errors import EXIT_TEMPFAIL, GitxactError, UsageError
from gitxact.state.record import JSON, NUMBER, OPTIONAL_STRING, Record, at_least, field
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


class TrackerEntry(Record):
    """One key's value (any JSON), its version (1, 2, ...), when and by which agent it was set:
    a record of ``tracker.json`` (exactly these fields) and what either backend gives back."""

    EXTRA_FORBIDDEN: ClassVar[bool] = True

    value: Any = field(JSON)
    version: int = field(at_least(1))
    updated: float = field(NUMBER)
    by: str | None = field(OPTIONAL_STRING, default=None)


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
