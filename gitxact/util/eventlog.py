"""The event record: what happened to locks, leases and transactions, for ``stats`` and ``watch``.

One JSON object per line in ``<common-dir>/gitxact/events/events.log`` (the kinds and
their fields: :data:`gitxact.observe.stats.KINDS`). Every emitter
(the lock layer on each release, ``gx``, rollbacks, reaps, recover, the landing queue)
pays for exactly one ``open(O_APPEND)`` + ``write`` + ``fstat`` + ``close``: no fsync, no
lock, no read. That is what lets the lock layer record every hold without slowing the
hold down (``scripts/bench``, "event append").

* **Concurrent writers** never interleave: each event is one ``write`` of well under
  ``PIPE_BUF`` bytes to a file opened ``O_APPEND``, which the kernel positions and
  writes as a unit on a local file system.
* **Bounded**: past :data:`LIMIT` bytes the writer that noticed rotates
  (``events.log`` -> ``.1`` -> ... -> ``.{KEEP}``, the oldest dropped). It rotates under
  an ``flock`` on the file it wrote to, and only if that file is still ``events.log``:
  two writers crossing the limit together rotate once, never twice (which would
  throw away a whole generation).
* **Crash-tolerant**: a writer killed mid-line (a power cut, a full disk) leaves a
  line without its newline; the next writer's event then follows it on the same
  line. The reader skips what does not parse and recovers an event glued to a torn
  one (every event starts with ``{"t":``, which JSON cannot produce inside a string),
  so only the torn event is lost.

Standard library only (os, time, fcntl; JSON through :mod:`gitxact.util.jsontext`): the
lock layer and ``gx``'s locked path write it, so it sits with the utilities, below them;
what reads it is :mod:`gitxact.observe`.
"""

from __future__ import annotations

import fcntl
import os
import time

from gitxact.errors import GitxactError
from gitxact.util import jsontext
from gitxact.util.faults import CRASHPOINT_ENV
from gitxact.util.files import FILE_MODE, ensure_private_dir, open_state_file

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

EVENTS_DIR = "events"
LOG_NAME = "events.log"
#: Bytes per generation; with :data:`KEEP` old ones the record stays under ~4 MiB
#: (some 20,000 events: days of a busy repository, the window ``stats`` needs).
LIMIT = 1024 * 1024
KEEP = 3
#: Longest text kept in one field: an event must stay one short write.
FIELD_LIMIT = 300
_START = b'{"t":'
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class EventLog:
    """The event record of one repository, by its folder (``<state-dir>/events``)."""

    def __init__(self, folder: str | Path, *, limit: int = LIMIT, keep: int = KEEP) -> None:
        self.folder = str(folder)
        self.path = os.path.join(self.folder, LOG_NAME)
        self.limit = limit
        self.keep = keep
        self._ready = False
        self._mode = FILE_MODE

    def emit(self, kind: str, agent: str | None = None, /, **fields: Any) -> None:
        """Append one event; never raises (a full disk must not fail the work it records)."""
        record: dict[str, Any] = {"t": round(time.time(), 6), "ev": kind, "pid": os.getpid(), "agent": agent}
        for name, value in fields.items():
            # Text cut short, times to the microsecond: an event stays one short write.
            if value.__class__ is str:
                record[name] = value[:FIELD_LIMIT]
            elif value.__class__ is float:
                record[name] = round(value, 6)
            else:
                record[name] = value
        line = jsontext.dumps(record, default=str).encode() + b"\n"
        try:  # noqa: SIM105 - on every lock release: gx's locked path imports no contextlib
            self._append(line)
        except (OSError, GitxactError):  # GitxactError: the folder is a symlink (doctor --fix removes it)
            pass

    def _append(self, line: bytes) -> None:
        if not self._ready:
            # Once per process: O_NOFOLLOW guards only the file, so the folder is checked
            # (and made) here; a symlink in its place is refused, never written through.
            self._mode = ensure_private_dir(self.folder)
            self._ready = True
        fd = open_state_file(self.path, _FLAGS, self._mode)
        try:
            if CRASHPOINT_ENV in os.environ:
                _maybe_tear(fd, line)
            os.write(fd, line)
            if os.fstat(fd).st_size > self.limit:
                self._rotate(fd)
        finally:
            os.close(fd)

    def _rotate(self, fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another writer is rotating this very file
        try:
            if os.stat(self.path).st_ino != os.fstat(fd).st_ino:
                return  # rotated already: our file is events.log.1 by now
            for n in range(self.keep - 1, 0, -1):
                try:  # noqa: SIM105 - contextlib is not imported on gx's path
                    os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
                except FileNotFoundError:
                    pass
            os.replace(self.path, f"{self.path}.1")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def files(self) -> list[str]:
        """The generations, oldest first."""
        return [f"{self.path}.{n}" for n in range(self.keep, 0, -1)] + [self.path]

    def read(self, since: float | None = None, kinds: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Events at or after *since* (of *kinds*), oldest first; torn lines skipped."""
        events: list[dict[str, Any]] = []
        for name in self.files():
            try:
                with open(name, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            for raw in data.split(b"\n"):
                event = parse_line(raw)
                if event is None:
                    continue
                if since is not None and float(event.get("t", 0.0)) < since:
                    continue
                if kinds is None or event.get("ev") in kinds:
                    events.append(event)
        return events

    def tail(self, count: int) -> list[dict[str, Any]]:
        """The last *count* events, reading only the end of the record (``watch`` asks often)."""
        import contextlib  # watch and stats only

        events: list[dict[str, Any]] = []
        for name in reversed(self.files()):
            start = 0
            with contextlib.suppress(OSError), open(name, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                start = max(0, size - count * 2 * FIELD_LIMIT)
                handle.seek(start)
                lines = handle.read().split(b"\n")
                if start:
                    lines = lines[1:]  # begins mid-line
                events[:0] = [e for e in (parse_line(raw) for raw in lines) if e is not None]
            if len(events) >= count or start:  # an older generation would leave a gap
                break
        return events[-count:] if count > 0 else []


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """One event, or ``None`` for a blank or torn line (an event glued after a torn one is kept)."""
    if not raw.strip():
        return None
    for start in (0, raw.rfind(_START)):
        if start < 0:
            continue
        try:
            value = jsontext.loads(raw[start:])
        except ValueError:
            continue
        if isinstance(value, dict) and "ev" in value:
            return value
    return None


def _maybe_tear(fd: int, line: bytes) -> None:
    """Test switch (``GITXACT_TEST_CRASHPOINT=event-torn``): write half the line, then die as a power cut would."""
    if "event-torn" in os.environ.get(CRASHPOINT_ENV, "").split(","):
        import signal

        os.write(fd, line[: len(line) // 2])
        os.kill(os.getpid(), signal.SIGKILL)


def folder_of(state_dir: str | Path) -> str:
    """``<state-dir>/events``: where a repository's event record lives."""
    return os.path.join(str(state_dir), EVENTS_DIR)
