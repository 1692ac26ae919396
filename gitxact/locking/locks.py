"""The lock hierarchy: repository (shared/exclusive) → worktree → named resources.

Every lock is a kernel lock (``flock``, :mod:`gitxact.locking.kernel`: shared or
exclusive for the repository, exclusive for the others), so a SIGKILLed holder never
leaves a stale lock. In front
of each sits the FIFO ticket queue of :mod:`gitxact.locking.tickets`, which orders waiters
and carries the holder records. This module adds what neither gives on its own:

* **Order.** Locks are taken repository → worktree → resources (by name). A request
  against that order raises :class:`LockOrderError` at once: a silent wait there is
  how A-holds-x-waits-y / B-holds-y-waits-x deadlocks start.
* **Timeouts** with exponential backoff and jitter, and an error naming the holder.
* **Reentrancy** per thread, and across the process tree: a child started while
  locks are held gets their ticket paths in ``GITXACT_LOCKS``; while such a ticket is
  still locked by its (living) owner the child treats the lock as its own. So
  ``gitxact lock -- gitxact lock -- true`` and a hook under ``gx commit`` never wait
  on their own parent.
* **Records.** Each acquisition that queued is one ``lock`` event (its wait and hold) at
  its release, each wait that runs out a ``timeout`` event, in the repository's event
  record (:mod:`gitxact.util.eventlog`: one append, no fsync).
"""

from __future__ import annotations

import os
import sys
import time

# start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")
from _thread import _local  # threading.local itself: threading imports collections

from gitxact.errors import LockOrderError, LockTimeoutError, StateError
from gitxact.locking import naming
from gitxact.locking.kernel import KernelLock
from gitxact.locking.tickets import EXCLUSIVE, SHARED, Mode, Party, Ticket, TicketName, parties, probe_alive
from gitxact.util import jsontext
from gitxact.util.digest import sha256_hex
from gitxact.util.eventlog import EventLog, folder_of
from gitxact.util.files import ensure_private_dir
from gitxact.util.identity import this_host
from gitxact.util.names import validate_name
from gitxact.util.value import Value

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from typing import Any, Protocol
else:
    Protocol = object

LOCKS_ENV = "GITXACT_LOCKS"
_BACKOFF_START = 0.0005
_BACKOFF_CAP = 0.025
_NOTIFY_AFTER = 1.0
_FOREVER = float("inf")


def _jitter() -> float:
    """A factor in [0.5, 1.5): random is imported by waits only, never by a lock taken at once."""
    import random

    return random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not crypto


class Level:
    """The three levels, in the order they are taken (plain ints, not ``enum``, on gx's locked path).

    Start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")."""

    REPOSITORY = 0
    WORKTREE = 1
    RESOURCE = 2
    NAMES = ("repository", "worktree", "resource")


class LockKey(Value):
    """One lock of the hierarchy; ``slug`` names its files under ``locks/``."""

    __slots__ = ("level", "name")

    def __init__(self, level: int, name: str) -> None:
        self.level = level
        self.name = name

    @property
    def slug(self) -> str:
        if self.level == Level.REPOSITORY:
            return naming.REPOSITORY_SLUG
        return (naming.worktree_slug if self.level == Level.WORKTREE else naming.resource_slug)(self.name)

    def describe(self) -> str:
        if self.level == Level.REPOSITORY:
            return "the repository lock"
        if self.level == Level.WORKTREE:
            return f"the lock of worktree {self.name!r}"
        return f"resource lock {self.name!r}"

    def comes_after(self, other: LockKey) -> bool:
        """Whether taking ``self`` while holding ``other`` respects the hierarchy."""
        if self.level != other.level:
            return self.level > other.level
        return self.level != Level.REPOSITORY and self.name > other.name


REPOSITORY = LockKey(Level.REPOSITORY, "repo")


def worktree_key(worktree_id: str) -> LockKey:
    """The lock of a worktree. git names worktrees after their folder, keeping non-ASCII
    letters (``wörk``); such an id is not a lock file name, so it is named by its hash."""
    if naming.plain_worktree_id(worktree_id):
        return LockKey(Level.WORKTREE, worktree_id)
    return LockKey(Level.WORKTREE, "id-" + sha256_hex(worktree_id.encode())[:24])


def resource_key(name: str) -> LockKey:
    return LockKey(Level.RESOURCE, validate_name(name, "resource name", limit=100))


class WaitObserver(Protocol):
    """Told about long waits (the CLI prints them)."""

    def waiting(self, key: LockKey, mode: Mode, elapsed: float, holders: list[Party]) -> None:
        """Called about once a second after the first second of a wait."""

    def acquired(self, key: LockKey, mode: Mode, waited: float) -> None:
        """Called when a wait that was reported ends with the lock."""


class _Silent:
    def waiting(self, key: LockKey, mode: Mode, elapsed: float, holders: list[Party]) -> None:
        return None

    def acquired(self, key: LockKey, mode: Mode, waited: float) -> None:
        return None


class Grant(Value):
    """How a lock was obtained: what the contention test and the bench measure.

    ``chosen_ns``/``visible_ns``/``granted_ns`` are system-wide monotonic times (zero
    for a reentrant or inherited grant, which never queued).
    """

    __slots__ = ("chosen_ns", "granted_ns", "inherited", "key", "mode", "reentrant", "visible_ns", "waited")

    def __init__(
        self,
        key: LockKey,
        mode: Mode,
        waited: float,
        *,
        chosen_ns: int = 0,
        visible_ns: int = 0,
        granted_ns: int = 0,
        reentrant: bool = False,
        inherited: bool = False,
    ) -> None:
        self.key = key
        self.mode = mode
        self.waited = waited
        self.chosen_ns = chosen_ns
        self.visible_ns = visible_ns
        self.granted_ns = granted_ns
        self.reentrant = reentrant
        self.inherited = inherited


class _Held:
    """A lock this thread holds. ``nest``: for an exclusive grant inherited from an
    ancestor, the nest lock that keeps this process's siblings (other descendants of
    that ancestor) out meanwhile."""

    __slots__ = ("backend", "count", "inherited_path", "key", "mode", "nest", "since", "ticket", "waited")

    def __init__(
        self,
        key: LockKey,
        mode: Mode,
        *,
        count: int,
        ticket: Ticket | None,
        backend: KernelLock | None,
        inherited_path: str | None,
        waited: float,
        since: float,
        nest: KernelLock | None = None,
    ) -> None:
        self.key = key
        self.mode = mode
        self.count = count
        self.ticket = ticket
        self.backend = backend
        self.inherited_path = inherited_path
        self.waited = waited
        self.since = since
        self.nest = nest

    @property
    def token(self) -> str:
        """What a child inherits: our nest if we hold one (its siblings wait on ours), else the grant."""
        if self.nest is not None:
            return os.path.realpath(self.nest.path)
        if self.ticket is not None:
            # Canonical, so a child that reaches the repository through another path
            # (a symlinked tmp folder, say) still recognises its parent's ticket.
            return os.path.realpath(self.ticket.path)
        return self.inherited_path or ""


class _ThreadState(_local):
    def __init__(self) -> None:
        self.held: dict[tuple[str, LockKey], _Held] = {}
        self.backends: dict[tuple[str, LockKey], KernelLock] = {}


_THREAD = _ThreadState()


def inherited_tokens() -> list[str]:
    """Ticket paths handed down by an ancestor holding locks (``GITXACT_LOCKS``)."""
    raw = os.environ.get(LOCKS_ENV)
    if not raw:
        return []
    try:
        value = jsontext.loads(raw)
    except ValueError:
        return []
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _command_line() -> str:
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    if program == "__main__.py":  # python -m gitxact
        program = "gitxact"
    return " ".join(_quoted(word) for word in [program, *sys.argv[1:]])[:200]


_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./-_")


def _quoted(word: str) -> str:
    """``shlex.quote``, without importing shlex (and re) on every locked ``gx`` call."""
    if word and all(char in _PLAIN for char in word):
        return word
    return "'" + word.replace("'", "'\"'\"'") + "'"


class Locks:
    """The locks of one repository (``<common-dir>/gitxact/locks``)."""

    def __init__(
        self,
        lock_dir: str | os.PathLike[str],
        *,
        default_timeout: float | Callable[[], float] = 60.0,
        agent: str | None = None,
        command: str | None = None,
        observer: WaitObserver | None = None,
    ) -> None:
        self.lock_dir = os.fspath(lock_dir)
        self._dir_key = os.path.realpath(lock_dir)
        self._timeout: float | Callable[[], float] = default_timeout
        self.agent = agent
        self.command = command or _command_line()
        self.observer: WaitObserver = observer or _Silent()
        self._ready: set[str] = set()
        self._file_mode: int | None = None
        #: The repository's event record (beside ``locks/``), which every feature writes to.
        self.events = EventLog(folder_of(os.path.dirname(self.lock_dir)))

    @property
    def file_mode(self) -> int:
        """The mode of the files made in the lock folder, shared as the repository is (util/files)."""
        if self._file_mode is None:  # known from the first wait; an inherited grant made none
            self._file_mode = ensure_private_dir(self.lock_dir)
        return self._file_mode

    @property
    def default_timeout(self) -> float:
        """Seconds to wait when a call names none. May be given as a function, called the
        first time a wait needs it: ``gx`` reads ``gitxact.lockTimeout`` (a git process)
        only when its lock is actually busy."""
        if callable(self._timeout):
            self._timeout = self._timeout()
        return self._timeout

    # -- public API ----------------------------------------------------------------------

    def hold(self, key: LockKey, mode: Mode = EXCLUSIVE, timeout: float | None = None) -> _Hold:
        """Hold *key* in *mode* for the body of the ``with`` block."""
        return _Hold(self, key, mode, timeout)

    def repository(self, mode: Mode = EXCLUSIVE, timeout: float | None = None) -> _Hold:
        return self.hold(REPOSITORY, mode, timeout)

    def worktree(self, worktree_id: str, timeout: float | None = None) -> _Hold:
        """This worktree's lock, exclusive: git work in one worktree (its index, files, HEAD).

        No repository lock: work in one worktree never waits for repository-wide work
        queued behind another worktree's long command (an editor left open, a pager).
        What must exclude it takes this lock too: :meth:`world`, or ending its lease.
        """
        return self.hold(worktree_key(worktree_id), EXCLUSIVE, timeout)

    def world(
        self, worktree_ids: list[str] | Callable[[], list[str]], timeout: float | None = None
    ) -> AbstractContextManager[Grant]:
        """The repository exclusive, and every worktree's lock: no git runs anywhere meanwhile.

        For gc and its kind, ``recover``, ``doctor --fix``, ``gitxact lock``. The repository
        lock is queued for like any other (first come, first served among repository-wide
        work and leasing); the worktree locks are then taken all at once or none (a busy one
        lets go of the others, and the attempt is made again after a backoff), so while this
        waits for a long command in one worktree (an editor left open) no other worktree
        waits for it. Leasing does, until then: it needs the repository lock.
        """
        import contextlib  # repository-wide work only: gx's worktree-level path never pays for it

        return contextlib.contextmanager(self._world)(worktree_ids, timeout)

    def _world(self, worktree_ids: list[str] | Callable[[], list[str]], timeout: float | None) -> Iterator[Grant]:
        import contextlib

        budget = self.default_timeout if timeout is None else timeout
        budget = _FOREVER if budget < 0 else budget
        started = time.monotonic()
        with self.hold(REPOSITORY, EXCLUSIVE, timeout) as grant:
            # Listed once the repository lock is ours (pass a function for that): a worktree
            # an acquire registered while we queued is then one whose lock we wait for too,
            # so no checkout of it is still running while we hold "the whole repository".
            ids = worktree_ids() if callable(worktree_ids) else worktree_ids
            keys = sorted({worktree_key(i) for i in ids}, key=lambda key: key.name)
            delay = _BACKOFF_START
            while True:
                taken = contextlib.ExitStack()
                try:
                    for key in keys:
                        taken.enter_context(self.hold(key, EXCLUSIVE, 0))
                except LockTimeoutError as busy:
                    taken.close()
                    if time.monotonic() - started >= budget:
                        self._record_timeout(REPOSITORY, EXCLUSIVE, time.monotonic() - started, "every worktree")
                        raise LockTimeoutError(
                            f"timed out after {budget:g}s waiting for every worktree to be free: {busy.message}",
                            hint=busy.hint,
                        ) from None
                    time.sleep(min(delay * _jitter(), _BACKOFF_CAP))
                    delay = min(delay * 2, _BACKOFF_CAP)
                    continue
                with taken:
                    yield grant
                return

    def resource(self, name: str, timeout: float | None = None) -> _Hold:
        return self.hold(resource_key(name), EXCLUSIVE, timeout)

    def stack(self, wanted: list[tuple[LockKey, Mode]], timeout: float | None = None) -> _Stack:
        """Hold several locks, taken in hierarchy order and released in reverse."""
        return _Stack(self, sorted(wanted, key=lambda item: (item[0].level, item[0].name)), timeout)

    def held(self) -> dict[LockKey, Mode]:
        return {key: held.mode for (d, key), held in _THREAD.held.items() if d == self._dir_key}

    def child_env(self) -> dict[str, str]:
        """Environment that lets child processes (git hooks, ``lock -- CMD``) inherit our locks.

        A grant this process nests under (see :meth:`acquire`) is handed down as its nest,
        not as the ancestor's grant: a child must wait for its siblings, never for us.
        """
        nested = {h.inherited_path for h in _THREAD.held.values() if h.nest is not None}
        inherited = [token for token in inherited_tokens() if token not in nested]
        tokens = list(dict.fromkeys([*inherited, *(h.token for h in _THREAD.held.values() if h.token)]))
        return {LOCKS_ENV: jsontext.dumps(tokens)} if tokens else {}

    def queue_dir(self, key: LockKey) -> str:
        return os.path.join(self.lock_dir, key.slug + naming.QUEUE_SUFFIX)

    def nest_dir(self, key: LockKey) -> str:
        return os.path.join(self.lock_dir, key.slug + naming.NEST_SUFFIX)

    def parties(self, key: LockKey) -> list[Party]:
        return parties(self.queue_dir(key))

    def known_keys(self) -> list[LockKey]:
        keys: list[LockKey] = []
        try:
            entries = sorted(os.listdir(self.lock_dir))
        except FileNotFoundError:
            entries = []
        if entries:
            for entry in entries:
                if not entry.endswith(naming.QUEUE_SUFFIX):
                    continue
                slug = entry.removesuffix(naming.QUEUE_SUFFIX)
                if slug == naming.REPOSITORY_SLUG:
                    keys.append(REPOSITORY)
                elif slug.startswith(naming.WORKTREE_PREFIX):
                    keys.append(LockKey(Level.WORKTREE, slug.removeprefix(naming.WORKTREE_PREFIX)))
                elif slug.startswith(naming.RESOURCE_PREFIX):
                    keys.append(LockKey(Level.RESOURCE, slug.removeprefix(naming.RESOURCE_PREFIX)))
        return keys

    # -- acquire / release ---------------------------------------------------------------

    def acquire(self, key: LockKey, mode: Mode = EXCLUSIVE, timeout: float | None = None) -> Grant:
        """Take *key*; every acquire must be paired with a :meth:`release`."""
        slot = (self._dir_key, key)
        held = _THREAD.held.get(slot)
        if held is not None:
            if mode == EXCLUSIVE and held.mode == SHARED:
                raise LockOrderError(
                    f"cannot upgrade {key.describe()} from shared to exclusive while holding it",
                    hint="take it exclusive from the start (an upgrade would deadlock against other readers)",
                )
            held.count += 1
            return Grant(key, held.mode, 0.0, reentrant=True)
        inherited = self._inherited(key, mode)
        if inherited is not None:
            self._check_order(key)
            # Reentrant for the ancestor's descendants, but not a free-for-all among them:
            # an exclusive request also takes the nest lock of the grant it inherits, so
            # two hooks' `gx add` started in parallel under one `gx commit` run one at a time.
            nest = self._enter_nest(key, inherited, timeout) if mode == EXCLUSIVE else None
            _THREAD.held[slot] = _Held(
                key,
                mode,
                count=1,
                ticket=None,
                backend=None,
                inherited_path=inherited,
                waited=0.0,
                since=time.time(),
                nest=nest,
            )
            return Grant(key, mode, 0.0, inherited=True)
        self._check_order(key)
        try:
            ticket, backend, waited = self._wait_for(key, mode, timeout)
        except OSError as exc:  # ENOSPC, EACCES, a symlink where a lock file should be (ELOOP)...
            from pathlib import Path  # the error path only

            raise StateError(
                Path(exc.filename if exc.filename else self.lock_dir),
                f"cannot be used for {key.describe()} ({exc.strerror or exc})",
                hint="free disk space or fix permissions; `gitxact doctor --fix` removes symbolic links there",
            ) from exc
        _THREAD.held[slot] = _Held(
            key, mode, count=1, ticket=ticket, backend=backend, inherited_path=None, waited=waited, since=time.time()
        )
        return Grant(
            key, mode, waited, chosen_ns=ticket.chosen_ns, visible_ns=ticket.visible_ns, granted_ns=time.monotonic_ns()
        )

    def release(self, key: LockKey) -> None:
        slot = (self._dir_key, key)
        held = _THREAD.held.get(slot)
        if held is None:
            raise LockOrderError(f"{key.describe()} released but not held")
        held.count -= 1
        if held.count > 0:
            return
        del _THREAD.held[slot]
        if held.ticket is None or held.backend is None:
            if held.nest is not None:  # inherited: the ancestor releases the lock itself
                held.nest.release()
                self._drop_nest(key, held.nest.path)
            return
        try:
            held.backend.release()
        finally:
            held.ticket.close()
            self._drop_nest(key, str(held.ticket.path))
        self._record(held, time.time() - held.since)

    def _drop_nest(self, key: LockKey, token: str) -> None:
        """Remove the nest our children took under *token*: they are done with it (one stat if none did)."""
        folder = self.nest_dir(key)
        if os.path.isdir(folder):
            try:  # noqa: SIM105 - contextlib is not imported on gx's path
                os.unlink(os.path.join(folder, os.path.basename(token) + ".n"))
            except FileNotFoundError:
                pass

    def _enter_nest(self, key: LockKey, token: str, timeout: float | None) -> KernelLock:
        folder = self.nest_dir(key)
        nest = KernelLock(os.path.join(folder, os.path.basename(token) + ".n"), ensure_private_dir(folder))
        budget = self.default_timeout if timeout is None else timeout
        if not nest.acquire(-1 if budget < 0 else budget):
            self._record_timeout(key, EXCLUSIVE, budget, "nest")
            raise LockTimeoutError(
                f"timed out after {budget:g}s waiting for {key.describe()}: another process started by the "
                "same holder has it",
                hint="the commands a hook or script runs in parallel share their parent's lock one at a time",
            )
        return nest

    def _check_order(self, key: LockKey) -> None:
        # Holding the repository exclusive, worktree locks may come in any order: every
        # other taker of two worktree locks takes the repository lock first, so none of
        # them can hold one we want while waiting for one we have. (The whole repository
        # holds the worktrees that exist; recover and reap then meet worktrees that no
        # longer do, through their journals and lease records.)
        sole = self.held().get(REPOSITORY) == EXCLUSIVE and key.level == Level.WORKTREE
        for (lock_dir, other), held in _THREAD.held.items():
            if sole and other.level == Level.WORKTREE:
                continue
            if lock_dir == self._dir_key and other != key and not key.comes_after(other):
                raise LockOrderError(
                    f"lock order violation: {key.describe()} requested while holding {other.describe()} ({held.mode})",
                    hint="locks are taken repository → worktree → resources (sorted by name)",
                )

    def _inherited(self, key: LockKey, mode: Mode) -> str | None:
        queue = os.path.realpath(self.queue_dir(key))
        nests = os.path.realpath(self.nest_dir(key))
        for token in inherited_tokens():
            if os.path.dirname(token) == nests and token.endswith(".n"):
                if probe_alive(token):  # a nested holder handed its nest down: it lives
                    return token
                continue
            if os.path.dirname(token) != queue:
                continue
            parsed = TicketName.parse(os.path.basename(token))
            if parsed is None or not parsed.holding:
                continue
            if mode == EXCLUSIVE and parsed.mode == SHARED:
                raise LockOrderError(
                    f"{key.describe()} is held shared by a parent process; it cannot be upgraded to exclusive here",
                    hint="run this command outside the parent's lock",
                )
            if probe_alive(token):
                return token
        return None

    def _backend(self, key: LockKey) -> KernelLock:
        slot = (self._dir_key, key)
        backend = _THREAD.backends.get(slot)
        if backend is None:
            backend = KernelLock(os.path.join(self.lock_dir, key.slug + naming.LOCK_SUFFIX), self.file_mode)
            _THREAD.backends[slot] = backend
        return backend

    def _wait_for(self, key: LockKey, mode: Mode, given: float | None) -> tuple[Ticket, KernelLock, float]:
        """Queue for *key*; *given* ``None`` means the default timeout, read only if we must wait."""
        queue = self.queue_dir(key)
        if queue not in self._ready:
            ensure_private_dir(os.path.dirname(self.lock_dir))
            self._file_mode = ensure_private_dir(self.lock_dir)
            ensure_private_dir(queue)
            self._ready.add(queue)
        record: dict[str, Any] = {
            "pid": os.getpid(),
            "host": this_host(),
            "agent": self.agent,
            "command": self.command,
            "mode": mode,
            "queued": time.time(),
        }
        started = time.monotonic()
        backend = self._backend(key)  # first: if it cannot be made, no ticket is left behind
        ticket = Ticket(queue, mode, record, self.file_mode)
        delay = _BACKOFF_START
        last_blocker: str | None = ""
        next_notice = started + _NOTIFY_AFTER
        noticed = False
        timeout: float | None = None
        try:
            while True:
                blocker = ticket.first_blocker()
                if blocker is None and backend.try_acquire(shared=mode == SHARED):
                    break
                elapsed = time.monotonic() - started
                if timeout is None:
                    timeout = self.default_timeout if given is None else given
                    timeout = _FOREVER if timeout < 0 else timeout
                if elapsed >= timeout:
                    if timeout > 0:  # a zero budget is a probe (`world` trying each worktree), not a wait
                        self._record_timeout(key, mode, elapsed)
                    raise self._timeout_error(key, mode, timeout)
                if blocker != last_blocker:
                    delay = _BACKOFF_START  # the queue moved: look again soon
                    last_blocker = blocker
                if time.monotonic() >= next_notice:
                    noticed = True
                    self.observer.waiting(key, mode, elapsed, [p for p in self.parties(key) if p.holding])
                    next_notice = time.monotonic() + 1.0
                pause = min(delay * _jitter(), max(0.0, timeout - elapsed))
                time.sleep(pause)
                delay = min(delay * 2, _BACKOFF_CAP)
            ticket.mark_holding()
        except BaseException:
            ticket.close()
            raise
        waited = time.monotonic() - started
        if noticed:
            self.observer.acquired(key, mode, waited)
        return ticket, backend, waited

    def _timeout_error(self, key: LockKey, mode: Mode, timeout: float) -> LockTimeoutError:
        everyone = self.parties(key)
        holders = [p for p in everyone if p.holding]
        waiters = [p for p in everyone if not p.holding and p.pid != os.getpid()]
        if holders:
            detail = "held by " + "; ".join(p.describe() for p in holders)
        else:
            detail = "no live holder recorded (the lock is being handed over)"
        if waiters:
            detail += f"; {len(waiters)} other waiter(s)"
        return LockTimeoutError(
            f"timed out after {timeout:g}s waiting for {key.describe()} ({mode}): {detail}",
            hint="try again later; `gitxact status` shows holders and waiters",
        )

    # -- hold/wait records ---------------------------------------------------------------

    def _record(self, held: _Held, hold: float) -> None:
        self.events.emit(
            "lock", self.agent, lock=held.key.slug, mode=held.mode, wait=round(held.waited, 6), hold=round(hold, 6)
        )

    def _record_timeout(self, key: LockKey, mode: Mode, waited: float, part: str | None = None) -> None:
        self.events.emit("timeout", self.agent, lock=key.slug, mode=mode, waited=round(waited, 6), part=part)

    def stats(self) -> list[dict[str, Any]]:
        """The recorded acquisitions (``lock`` events: wait and hold), oldest first."""
        return self.events.read(kinds=frozenset({"lock"}))


class _Hold:
    """``with locks.hold(key):`` (a class, not a generator: gx's locked path imports no contextlib).

    Start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")."""

    __slots__ = ("_key", "_locks", "_mode", "_timeout")

    def __init__(self, locks: Locks, key: LockKey, mode: Mode, timeout: float | None) -> None:
        self._locks = locks
        self._key = key
        self._mode = mode
        self._timeout = timeout

    def __enter__(self) -> Grant:
        return self._locks.acquire(self._key, self._mode, self._timeout)

    def __exit__(self, *exc: object) -> None:
        self._locks.release(self._key)


class _Stack:
    """Several locks in the order given (hierarchy order), released in reverse, as ``ExitStack`` would."""

    __slots__ = ("_locks", "_taken", "_timeout", "_wanted")

    def __init__(self, locks: Locks, wanted: list[tuple[LockKey, Mode]], timeout: float | None) -> None:
        self._locks = locks
        self._wanted = wanted
        self._timeout = timeout
        self._taken: list[LockKey] = []

    def __enter__(self) -> None:
        try:
            for key, mode in self._wanted:
                self._locks.acquire(key, mode, self._timeout)
                self._taken.append(key)
        except BaseException:
            self._release()
            raise

    def __exit__(self, *exc: object) -> None:
        self._release()

    def _release(self) -> None:
        """Every taken lock is let go even if one release fails; the first failure is raised."""
        failure: BaseException | None = None
        while self._taken:
            try:
                self._locks.release(self._taken.pop())
            except BaseException as exc:  # noqa: BLE001 - re-raised below, after the others are released
                failure = failure or exc
        if failure is not None:
            raise failure


def summarize_waits(records: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p99/max of wait and hold times, per lock and overall (seconds)."""

    def pct(values: list[float], q: float) -> float:
        if not values:
            return 0.0
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def block(items: list[dict[str, Any]]) -> dict[str, float | int]:
        waits = [float(r.get("wait", 0.0)) for r in items]
        holds = [float(r.get("hold", 0.0)) for r in items]
        return {
            "count": len(items),
            "wait_p50": pct(waits, 0.5),
            "wait_p99": pct(waits, 0.99),
            "wait_max": max(waits, default=0.0),
            "hold_p50": pct(holds, 0.5),
            "hold_max": max(holds, default=0.0),
        }

    by_lock: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_lock.setdefault(str(record.get("lock")), []).append(record)
    return {"all": block(records), "locks": {name: block(items) for name, items in sorted(by_lock.items())}}
