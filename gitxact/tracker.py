"""The shared coordination tracker: a versioned key → JSON map agents update safely.

Two agents doing read-modify-write of a JSON file lose updates (measured: 214 of 320
kept). Here every change is a read-modify-write of the ``tracker.json`` state file
under the ``tracker`` resource lock, so nothing is lost, and every key carries a
version for optimistic concurrency: ``set --expect-version N`` refuses (exit 3) when
someone changed the key since the caller read version N.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, ClassVar

from gitxact.backends.base import MAX_VALUE_BYTES, TrackerEntry, check_value
from gitxact.backends.base import TrackerBackend as Tracker
from gitxact.core.repo import LOCKS_DIR
from gitxact.errors import OperationFailedError, UsageError, VersionConflictError
from gitxact.state.record import Record, dict_of, field
from gitxact.util import inputs
from gitxact.util.names import validate_key

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.locking.locks import Locks
    from gitxact.state.store import StateFile

#: ``Tracker`` is what ``ws.tracker`` is on either backend; :class:`FileTracker` is the file one.
__all__ = [
    "MAX_VALUE_BYTES",
    "FileTracker",
    "Tracker",
    "TrackerEntry",
    "TrackerState",
    "open_tracker",
    "parse_json_value",
]

TRACKER_LOCK = "tracker"


class TrackerState(Record):
    """The tracker's state file: key -> :class:`TrackerEntry`; exactly the field ``entries``."""

    KIND: ClassVar[str] = "tracker"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    entries: dict[str, TrackerEntry] = field(dict_of(TrackerEntry), default={})


def parse_json_value(text: str) -> Any:
    """Parse a value given on the command line; strict JSON (no NaN), bounded size."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise UsageError(f"value is larger than {MAX_VALUE_BYTES} bytes")

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    if inputs.nesting(text) > inputs.MAX_DEPTH:
        raise inputs.InvalidInputError(f"value is nested deeper than {inputs.MAX_DEPTH} levels")
    try:
        return inputs.check_json(json.loads(text, parse_constant=reject_constant), "value")
    except inputs.InvalidInputError:
        raise
    except (ValueError, RecursionError) as exc:
        raise UsageError(
            f"value is not valid JSON: {text[:60]!r}", hint="quote strings as JSON, e.g. '\"done\"' or 42"
        ) from exc


class FileTracker:
    """Atomic operations on the tracker of one repository, in its state file (this host only)."""

    def __init__(self, file: StateFile[TrackerState], locks: Locks, agent: str | None = None) -> None:
        self._file = file
        self._locks = locks
        self._agent = agent

    @property
    def path(self) -> str:
        return str(self._file.path)

    def get(self, key: str | None = None) -> dict[str, TrackerEntry]:
        """All entries, or the one named *key* (missing → exit 1). Reads take no lock: writes are atomic."""
        entries = self._file.load().entries
        if key is None:
            return entries
        validate_key(key)
        if key not in entries:
            raise OperationFailedError(f"tracker has no key {key!r}")
        return {key: entries[key]}

    def set(self, key: str, value: Any, expect_version: int | None = None) -> TrackerEntry:
        validate_key(key)
        check_value(value)
        with self._locks.resource(TRACKER_LOCK):
            state = self._file.load(repair=True)
            current = state.entries.get(key)
            current_version = current.version if current else 0
            if expect_version is not None and expect_version != current_version:
                raise VersionConflictError(
                    f"tracker key {key!r} is at version {current_version}, not {expect_version}",
                    hint="read it again (`gitxact tracker get KEY --json`) and retry with the new version",
                )
            entry = TrackerEntry(value=value, version=current_version + 1, updated=time.time(), by=self._agent)
            state.entries[key] = entry
            self._file.save(state)
            return entry

    def incr(self, key: str, amount: int = 1) -> TrackerEntry:
        validate_key(key)
        with self._locks.resource(TRACKER_LOCK):
            state = self._file.load(repair=True)
            current = state.entries.get(key)
            base: Any = current.value if current else 0
            if isinstance(base, bool) or not isinstance(base, int):
                raise OperationFailedError(f"tracker key {key!r} holds {type(base).__name__}, not an integer")
            entry = TrackerEntry(
                value=base + amount,
                version=(current.version if current else 0) + 1,
                updated=time.time(),
                by=self._agent,
            )
            state.entries[key] = entry
            self._file.save(state)
            return entry

    def delete(self, key: str, expect_version: int | None = None) -> None:
        validate_key(key)
        with self._locks.resource(TRACKER_LOCK):
            state = self._file.load(repair=True)
            current = state.entries.get(key)
            if current is None:
                raise OperationFailedError(f"tracker has no key {key!r}")
            if expect_version is not None and expect_version != current.version:
                raise VersionConflictError(f"tracker key {key!r} is at version {current.version}, not {expect_version}")
            del state.entries[key]
            self._file.save(state)


def open_tracker(repo: Repo) -> Tracker:
    """The tracker of *repo* on its backend (:mod:`gitxact.backends.choice`): by default its
    state file, guarded by the repository's named-resource locks; rows in PostgreSQL when
    so configured (psycopg is imported only then)."""
    from gitxact.backends.choice import FILES, choose

    choice = choose(repo)
    if choice.kind != FILES:
        from gitxact.backends.pg_tracker import PostgresTracker

        return PostgresTracker.open(repo, choice)
    repo.store.ensure(LOCKS_DIR)
    return FileTracker(repo.state_file("tracker.json", TrackerState), repo.locks, repo.agent)
