"""The FIFO ticket queue in front of every lock, and its holder records.

git, Mercurial and GitButler leave the order of lock waiters to chance (whoever
retries at the right moment wins), so under contention one agent can starve. Here
each waiter first files a *ticket* in ``<lock>.q/``; only the oldest compatible
ticket may try the kernel lock, so waiters are served in arrival order.

A ticket is a small file named ``<monotonic-ns>-<pid>-<rand>.<s|x>.<w|h>`` (shared or
exclusive, waiting or holding) holding a JSON holder record (pid, host, agent,
command). Its owner keeps a kernel lock (``flock``, :mod:`gitxact.locking.kernel`) on
it for as long as the ticket exists: it is created under a hidden name, locked, and
only then renamed into view, so every visible ticket is locked by a live owner or by
nobody. A ticket nobody locks belongs to a dead process; whoever finds it takes that
flock (which doubles as the break lock, so two cleaners never race) and unlinks it.
The same file, renamed to ``.h``, is the holder record that ``status`` and timeout
messages show, and its path is the token a child process inherits.
"""

from __future__ import annotations

import os
import time

from gitxact.locking import naming
from gitxact.locking.kernel import try_lock
from gitxact.util import jsontext
from gitxact.util.files import FILE_MODE, open_state_file
from gitxact.util.value import Value

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from typing import Any, Literal, TypeAlias

    Mode: TypeAlias = Literal["shared", "exclusive"]
else:
    Mode = str
SHARED: Mode = "shared"
EXCLUSIVE: Mode = "exclusive"
_MODE_CODE = {SHARED: "s", EXCLUSIVE: "x"}
_CODE_MODE: dict[str, Mode] = {"s": SHARED, "x": EXCLUSIVE}
#: A hidden ticket is created, then flock'd a few microseconds later; only one that
#: is unlocked *and* older than this is a crashed chooser's.
_CHOOSING_GRACE = 1.0
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class TicketName(Value):
    """A parsed ticket file name; ordering by ``ident`` is arrival order."""

    __slots__ = ("holding", "ident", "mode", "pid")

    def __init__(self, *, ident: str, pid: int, mode: Mode, holding: bool) -> None:
        self.ident = ident
        self.pid = pid
        self.mode = mode
        self.holding = holding

    @classmethod
    def parse(cls, name: str) -> TicketName | None:
        if name.startswith("."):
            return None
        parts = name.split(".")
        if len(parts) != 3 or parts[1] not in _CODE_MODE or parts[2] not in ("w", "h"):
            return None
        pieces = parts[0].split("-")
        if len(pieces) != 3 or not pieces[0].isdigit() or not pieces[1].isdigit():
            return None
        return cls(ident=parts[0], pid=int(pieces[1]), mode=_CODE_MODE[parts[1]], holding=parts[2] == "h")

    def file_name(self) -> str:
        return f"{self.ident}.{_MODE_CODE[self.mode]}.{'h' if self.holding else 'w'}"


def conflicts(mine: Mode, theirs: Mode) -> bool:
    return EXCLUSIVE in (mine, theirs)


def probe_alive(path: str) -> bool:
    """Whether a live process owns the ticket at *path*; a dead owner's ticket is removed.

    Taking the ticket's own flock proves its owner is gone (the kernel dropped the
    lock when the process died), and holding it while unlinking keeps a second
    cleaner from acting at the same time.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # unreadable: cannot prove anything, so assume alive
    try:
        if try_lock(fd):
            _unlink(path)
            return False
        return True
    finally:
        os.close(fd)


def _young(path: str) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime < _CHOOSING_GRACE
    except FileNotFoundError:
        return False


def read_record(path: str) -> dict[str, Any]:
    """The holder record in a ticket; an empty dict if it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return {}
    try:
        raw = os.read(fd, 8192)
        since = os.fstat(fd).st_mtime
    except OSError:
        return {}
    finally:
        os.close(fd)
    try:
        record = jsontext.loads(raw)
    except ValueError:
        return {}
    if not isinstance(record, dict):
        return {}
    record["since"] = since
    return record


class Ticket:
    """This thread's place in one lock's queue, flock'd for as long as it exists.

    Choosing a place works like Lamport's bakery: a ticket is first created under a
    hidden ``.new-`` name (the "choosing" flag), its arrival time read from the
    system-wide monotonic clock, then renamed into view. A waiter does not act on the
    queue while anyone else is still choosing, so a ticket that became visible
    before another waiter started choosing is always served first.
    """

    def __init__(self, queue_dir: str, mode: Mode, record: dict[str, Any], file_mode: int = FILE_MODE) -> None:
        self.queue_dir = queue_dir
        self.mode = mode
        self.chosen_ns = time.monotonic_ns()
        ident = f"{self.chosen_ns:020d}-{os.getpid()}-{os.urandom(4).hex()}"
        # The mode shows in the hidden name too: a shared waiter need not wait for a shared
        # ticket still being chosen (two readers never conflict, whichever goes first).
        hidden = os.path.join(queue_dir, f"{naming.CHOOSING_PREFIX}{ident}.{_MODE_CODE[mode]}")
        self.fd = open_state_file(hidden, _OPEN_FLAGS, file_mode)
        try:
            try_lock(self.fd)  # a brand-new file: nobody else can hold it
            os.write(self.fd, jsontext.dumps(record).encode())
            self.name = TicketName(ident=ident, pid=os.getpid(), mode=mode, holding=False)
            os.rename(hidden, self.path)
        except BaseException:
            try:  # noqa: SIM105 - no contextlib on gx's path
                os.unlink(hidden)
            except OSError:
                pass
            os.close(self.fd)
            raise
        self.visible_ns = time.monotonic_ns()

    @property
    def path(self) -> str:
        return os.path.join(self.queue_dir, self.name.file_name())

    def first_blocker(self) -> str | None:
        """The name of a live ticket that must go first, or ``None`` if it is our turn.

        Blockers are waiting tickets ahead of ours whose mode conflicts, and tickets
        still being chosen (they may turn out to be ahead). Dead ones are cleared.
        """
        ahead: list[str] = []
        choosing: list[str] = []
        for entry in os.listdir(self.queue_dir):
            if entry.startswith(naming.CHOOSING_PREFIX):
                if not (self.mode == SHARED and entry.endswith(f".{_MODE_CODE[SHARED]}")):
                    choosing.append(entry)
                continue
            other = TicketName.parse(entry)
            if other is None or other.holding or other.ident >= self.name.ident:
                continue
            if conflicts(self.mode, other.mode):
                ahead.append(entry)
        for entry in choosing:
            path = os.path.join(self.queue_dir, entry)
            if _young(path) or probe_alive(path):
                return entry
        for entry in sorted(ahead):
            if probe_alive(os.path.join(self.queue_dir, entry)):
                return entry
        return None

    def mark_holding(self) -> None:
        """Turn the ticket into the holder record; its mtime becomes the 'since' time.

        Tickets and holder records of processes that died in this queue are cleared here,
        by the next holder, so ``status`` and ``doctor`` never show a dead party for long.
        """
        os.utime(self.fd)
        holding = TicketName(ident=self.name.ident, pid=self.name.pid, mode=self.mode, holding=True)
        os.rename(self.path, os.path.join(self.queue_dir, holding.file_name()))
        self.name = holding
        for entry in os.listdir(self.queue_dir):
            other = TicketName.parse(entry)
            if other is not None and entry != holding.file_name():
                probe_alive(os.path.join(self.queue_dir, entry))

    def close(self) -> None:
        """Leave the queue (or give up the holder record)."""
        _unlink(self.path)
        os.close(self.fd)


class Party(Value):
    """A holder or waiter of a lock, as ``status`` shows it."""

    __slots__ = ("agent", "command", "holding", "host", "mode", "pid", "since", "ticket")

    def __init__(
        self,
        *,
        ticket: str,
        mode: Mode,
        holding: bool,
        pid: int,
        host: str | None,
        agent: str | None,
        command: str | None,
        since: float,
    ) -> None:
        self.ticket = ticket
        self.mode = mode
        self.holding = holding
        self.pid = pid
        self.host = host
        self.agent = agent
        self.command = command
        self.since = since

    def describe(self, now: float | None = None) -> str:
        age = (time.time() if now is None else now) - self.since
        who = f"pid {self.pid}" + (f" on {self.host}" if self.host else "")
        if self.agent:
            who += f" (agent {self.agent})"
        what = f" running {self.command!r}" if self.command else ""
        verb = "held" if self.holding else "waiting"
        return f"{who}{what}, {verb} {self.mode} for {age:.1f}s"


def parties(queue_dir: str) -> list[Party]:
    """Live holders and waiters of one lock, oldest first; dead tickets are cleared."""
    found: list[Party] = []
    try:
        names = sorted(os.listdir(queue_dir))
    except FileNotFoundError:
        return found
    now = time.time()
    for entry in names:
        path = os.path.join(queue_dir, entry)
        if entry.startswith(naming.CHOOSING_PREFIX):
            if not _young(path):
                probe_alive(path)  # clears a chooser that died before its ticket became visible
            continue
        parsed = TicketName.parse(entry)
        if parsed is None or not probe_alive(path):
            continue
        record = read_record(path)
        found.append(
            Party(
                ticket=entry,
                mode=parsed.mode,
                holding=parsed.holding,
                pid=parsed.pid,
                host=_str_or_none(record.get("host")),
                agent=_str_or_none(record.get("agent")),
                command=_str_or_none(record.get("command")),
                since=float(record.get("since", now)),
            )
        )
    return found


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _unlink(path: str) -> None:
    """Remove *path* if it is still there (``contextlib.suppress`` without importing contextlib)."""
    try:  # noqa: SIM105
        os.unlink(path)
    except FileNotFoundError:
        pass
