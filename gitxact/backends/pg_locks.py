"""Named locks in PostgreSQL: session-level advisory locks, shared by every host.

* **Queue.** ``pg_advisory_lock`` waits in PostgreSQL's lock manager, which queues a
  waiter behind every earlier conflicting waiter (``LockAcquire`` checks the wait
  queue, not only the holders; ``ProcSleep`` appends to it), so waiters are served first
  come, first served; ``tests/test_postgres_locks.py`` checks the order. A session takes
  each name once (reentrancy is counted here), so PostgreSQL's rule letting a session
  that already holds the lock jump the queue never applies.
* **Death.** Advisory locks end with their session: a killed process's kernel closes its
  socket and the server ends the session at once; a vanished host's session ends
  within :data:`~gitxact.backends.bounds.DEAD_PEER_BOUND` seconds (keepalives), and a
  vanished waiter leaves the queue within that bound plus
  :data:`~gitxact.backends.bounds.CHECK_INTERVAL_MS`.
* **The holder gives up first.** Each held name has a session of its own, idle but for a
  :class:`~gitxact.backends.pg_watch.SessionWatch` that confirms it; a holder that cannot,
  within half the server's bound, treats the lock as lost: :meth:`PostgresGrant.check`
  and release raise :class:`LockLostError`, and the callback given to :meth:`hold` is
  called (``gitxact lock --name`` ends its command there). A session of its own also
  keeps a wait for a second name from silencing the first name's session.
* **Fencing.** Every grant takes the next number of its name (``gitxact.lock_fences``,
  one row per name, only ever incremented, in a logged table): :attr:`PostgresGrant.fence`.
  A resource that remembers the highest fence it saw refuses a holder that lost its lock
  without knowing (a paused process, a server restart behind a cut link).
* **Who.** ``gitxact.lock_holders`` names each holder (host, pid, agent, command), and
  each waiter too (written before it queues, so ``gitxact status`` names who waits); a
  row counts only while ``pg_locks`` shows its session holding (or awaiting) the lock,
  so a dead holder's row is never believed, and the next taker of that name deletes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from gitxact.backends.base import BackendUnavailableError
from gitxact.backends.bounds import CHECK_INTERVAL_MS
from gitxact.backends.files import check_mode, validate_lock_name
from gitxact.backends.pg_watch import LostCallback, SessionWatch, now
from gitxact.backends.postgres import NOW, Database, host_identity, lock_timeout_ms
from gitxact.errors import LockLostError, LockOrderError, LockTimeoutError
from gitxact.locking.locks import resource_key
from gitxact.locking.tickets import EXCLUSIVE, SHARED, Mode, Party

if TYPE_CHECKING:
    from gitxact.backends.choice import Choice, Namespace
    from gitxact.backends.postgres import Conn
    from gitxact.core.repo import Repo
    from gitxact.locking.locks import WaitObserver


def lock_key(ns: Namespace, name: str) -> int:
    """The advisory lock's 64-bit key. A collision with another name (or another
    application's int8 advisory lock) would only make two locks one, never free one."""
    digest = hashlib.sha256(f"gitxact\0{ns.ident}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_tag(key: int) -> dict[str, int]:
    """How ``pg_locks`` shows an int8 advisory key: high half, low half, ``objsubid`` 1."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return {"classid": unsigned >> 32, "objid": unsigned & 0xFFFF_FFFF}


IN_PG_LOCKS = (
    "l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND l.classid::bigint = %(classid)s AND l.objid::bigint = %(objid)s AND l.objsubid = 1"
)


#: Released lock sessions a thread keeps: a new connection per acquire would cost more than the lock.
_IDLE_SESSIONS = 2


class _Held:
    __slots__ = ("count", "fence", "mode", "session", "waited", "watch")

    def __init__(self, mode: Mode, session: Conn, waited: float, fence: int, watch: SessionWatch) -> None:
        self.mode = mode
        self.session = session
        self.waited = waited
        self.fence = fence
        self.watch = watch
        self.count = 1


class PostgresGrant:
    """A named lock held by a database session of this thread's."""

    __slots__ = ("_locks", "fence", "mode", "name", "session", "waited")

    def __init__(self, locks: PostgresNamedLocks, name: str, held: _Held, waited: float) -> None:
        self._locks = locks
        self.name = name
        self.mode = held.mode
        self.waited = waited
        #: The backend pid of the database session holding the lock: what a landing queue
        #: records, so a write can be made conditional on the lock still being held.
        self.session = held.session.info.backend_pid
        #: This grant's number in the name's sequence, larger than every earlier grant's:
        #: what ``gitxact lock --name`` exports as ``GITXACT_FENCE``.
        self.fence = held.fence

    def check(self) -> None:
        """Raise :class:`LockLostError` unless the session holding the lock still lives
        and was confirmed within the holder's bound.

        A session's advisory locks end only with the session or an unlock, so a session
        that answers still holds them. A landing queue calls this before it pushes.
        """
        self._locks.check(self.name)


class _ThreadSessions(threading.local):
    def __init__(self) -> None:
        self.session: Conn | None = None
        self.pid = 0
        self.held: dict[str, _Held] = {}
        #: Lock sessions released cleanly (they hold nothing), kept for the next acquire.
        self.idle: list[Conn] = []


class PostgresNamedLocks:
    """Named locks of one namespace, shared by every host; per thread, like the file locks."""

    kind = "postgresql"

    def __init__(
        self,
        db: Database,
        *,
        agent: str | None = None,
        command: str = "",
        default_timeout: float = 60.0,
        observer: WaitObserver | None = None,
    ) -> None:
        self._db = db
        self._agent = agent
        self._command = command
        self._default_timeout = default_timeout
        self._observer = observer
        self._local = _ThreadSessions()
        self._all: list[Conn] = []
        self._watches: list[SessionWatch] = []
        self._all_guard = threading.Lock()
        self._pid = os.getpid()  # a forked child must not close its parent's sessions

    @classmethod
    def open(cls, repo: Repo, choice: Choice) -> PostgresNamedLocks:
        return cls(
            Database.of(repo, choice),
            agent=repo.agent,
            command=repo.locks.command,
            default_timeout=repo.locks.default_timeout,
            observer=repo.locks.observer,
        )

    @property
    def namespace(self) -> Namespace:
        return self._db.ns

    # -- sessions ----------------------------------------------------------------------

    def _mine(self) -> _ThreadSessions:
        local = self._local
        if local.pid != os.getpid():
            local.session, local.held, local.idle, local.pid = None, {}, [], os.getpid()  # a forked child holds nothing
        return local

    def _session(self) -> Conn:
        """This thread's session for questions (holders, waiters); it holds no lock."""
        local = self._mine()
        if local.session is None or local.session.closed:
            local.session = self._open("gitxact lock query")
        return local.session

    def _open(self, purpose: str) -> Conn:
        conn = self._db.connect(purpose)
        with self._all_guard:
            self._all = [c for c in self._all if not c.closed]
            self._all.append(conn)
        return conn

    def _lock_session(self) -> Conn:
        """A session of its own for one name: idle while held, so its watch can confirm it
        (one released cleanly before, else a new one)."""
        local = self._mine()
        while local.idle:
            conn = local.idle.pop()
            if not conn.closed:
                return conn
        conn = self._open("gitxact lock")
        if conn.info.server_version >= 140000:
            # The server notices a waiter whose host vanished while it waits in the queue.
            self._run(conn, "opening a lock session", f"SET client_connection_check_interval = {CHECK_INTERVAL_MS}")
        return conn

    def _run(self, conn: Conn, doing: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            error = self._db.failure(exc, doing, conn)
            if isinstance(error, BackendUnavailableError):
                conn.close()
            raise error from None

    def __del__(self) -> None:
        self.close()

    def close(self) -> None:
        with self._all_guard:
            mine = [c for c in self._all if not c.closed]
            watches, self._watches = self._watches, []
            self._all = []
        for watch in watches:
            watch.stop()
        if os.getpid() == self._pid:
            for conn in mine:
                conn.close()
        self._local.session = None
        self._local.held = {}
        self._local.idle = []

    # -- the API ------------------------------------------------------------------------

    @contextlib.contextmanager
    def hold(
        self, name: str, mode: Mode = EXCLUSIVE, timeout: float | None = None, *, on_lost: LostCallback | None = None
    ) -> Iterator[PostgresGrant]:
        grant = self.acquire(name, mode, timeout, on_lost=on_lost)
        try:
            yield grant
        except BaseException:
            with contextlib.suppress(LockLostError, BackendUnavailableError):
                self.release(name)  # the body's error is the one to report
            raise
        self.release(name)

    def acquire(
        self, name: str, mode: Mode = EXCLUSIVE, timeout: float | None = None, *, on_lost: LostCallback | None = None
    ) -> PostgresGrant:
        """Take *name*; pair every acquire with a :meth:`release` (or use :meth:`hold`).

        *on_lost* is called (from another thread) with the :class:`LockLostError` if the
        holder gives the lock up before release because it cannot confirm its session.
        """
        validate_lock_name(name)
        check_mode(mode)
        local = self._mine()
        held = local.held.get(name)
        if held is not None:
            if mode == EXCLUSIVE and held.mode == SHARED:
                raise LockOrderError(
                    f"cannot upgrade named lock {name!r} from shared to exclusive while holding it",
                    hint="take it exclusive from the start (an upgrade would deadlock against other readers)",
                )
            held.count += 1
            held.watch.add_callback(on_lost)
            return PostgresGrant(self, name, held, 0.0)
        for other in local.held:
            if other > name:
                raise LockOrderError(
                    f"named lock {name!r} requested while holding {other!r}",
                    hint="named locks are taken in name order (a wait out of order is how deadlocks start)",
                )
        session = self._lock_session()
        try:
            held = self._take(session, name, mode, timeout)
        except BaseException:
            session.close()
            raise
        local.held[name] = held
        held.watch.add_callback(on_lost)
        return PostgresGrant(self, name, held, held.waited)

    def _take(self, session: Conn, name: str, mode: Mode, timeout: float | None) -> _Held:
        key = lock_key(self._db.ns, name)
        suffix = "_shared" if mode == SHARED else ""
        started = time.monotonic()
        doing = f"taking named lock {name!r}"
        got = self._run(session, doing, f"SELECT pg_try_advisory_lock{suffix}(%(k)s)", {"k": key})
        if not got[0][0]:
            self._wait(session, name, mode, key=key, timeout=timeout, started=started)
        waited = time.monotonic() - started
        self._record(session, name, mode, f"recording the holder of {name!r}")
        # Sent after the grant: answered, it confirms the session from the moment it left.
        confirmed = now()
        fence = self._next_fence(session, name)
        watch = SessionWatch(session, name, confirmed)
        with self._all_guard:
            self._watches.append(watch)
        watch.start()
        return _Held(mode, session, waited, fence, watch)

    def _next_fence(self, session: Conn, name: str) -> int:
        """The next number of *name*'s fence: an increment committed before it is handed out,
        so no grant after a crash or restart ever gets a number as low as an earlier one's."""
        rows = self._run(
            session,
            f"numbering the grant of {name!r}",
            "INSERT INTO gitxact.lock_fences AS f (ns, name, fence) VALUES (%(ns)s, %(name)s, 1)"
            " ON CONFLICT (ns, name) DO UPDATE SET fence = f.fence + 1 RETURNING fence",
            {"ns": self._db.ns.ident, "name": name},
        )
        return int(rows[0][0])

    def _record(self, session: Conn, name: str, mode: Mode, doing: str) -> None:
        """Name this session's process (host, pid, agent, command) beside *name*, from now.

        Written before a wait as well as after the grant: ``pg_locks`` then tells a
        waiter's row from a holder's (granted or not), so ``gitxact status`` names who
        waits, not only who holds. The grant rewrites ``since`` to the moment it came.
        """
        self._run(
            session,
            doing,
            "WITH gone AS (DELETE FROM gitxact.lock_holders h WHERE h.ns = %(ns)s AND h.name = %(name)s"
            " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = h.session))"
            " INSERT INTO gitxact.lock_holders (ns, name, session, mode, host, pid, agent, command, since)"
            " VALUES (%(ns)s, %(name)s, pg_backend_pid(), %(mode)s, %(host)s, %(pid)s, %(agent)s, %(command)s,"
            f" {NOW}) ON CONFLICT (ns, name, session) DO UPDATE SET mode = EXCLUDED.mode, host = EXCLUDED.host,"
            " pid = EXCLUDED.pid, agent = EXCLUDED.agent, command = EXCLUDED.command, since = EXCLUDED.since",
            {
                "ns": self._db.ns.ident,
                "name": name,
                "mode": mode,
                "host": host_identity(),
                "pid": os.getpid(),
                "agent": self._agent,
                "command": self._command,
            },
        )

    def _unrecord(self, session: Conn, name: str) -> None:
        """Drop this session's row for *name* after a wait that timed out (the session lives on)."""
        self._run(
            session,
            f"forgetting the wait for {name!r}",
            "DELETE FROM gitxact.lock_holders WHERE ns = %(ns)s AND name = %(name)s AND session = pg_backend_pid()",
            {"ns": self._db.ns.ident, "name": name},
        )

    def _wait(self, session: Conn, name: str, mode: Mode, *, key: int, timeout: float | None, started: float) -> None:
        """Queue in PostgreSQL's lock manager until granted or *timeout*; the timeout names the holders."""
        budget = self._default_timeout if timeout is None else timeout
        budget = math.inf if budget < 0 else budget
        if budget == 0:
            raise self._timeout_error(name, mode, budget)
        if self._observer is not None:
            self._observer.waiting(resource_key(name), mode, 0.0, self.holders(name))
        suffix = "_shared" if mode == SHARED else ""
        self._record(session, name, mode, f"recording a waiter for {name!r}")
        self._run(session, "setting the lock wait", f"SET lock_timeout = {lock_timeout_ms(budget)}")
        try:
            session.execute(f"SELECT pg_advisory_lock{suffix}(%(k)s)", {"k": key})
        except pg_errors.LockNotAvailable:
            timed_out = self._timeout_error(name, mode, budget)
            self._unrecord(session, name)
            raise timed_out from None
        except psycopg.Error as exc:
            raise self._db.failure(exc, f"waiting for named lock {name!r}", session) from None
        if self._observer is not None:
            self._observer.acquired(resource_key(name), mode, time.monotonic() - started)

    def _timeout_error(self, name: str, mode: Mode, budget: float) -> LockTimeoutError:
        holders = self.holders(name)
        detail = "held by " + "; ".join(p.describe() for p in holders) if holders else "no holder recorded yet"
        waiters = self._waiters(name)
        if waiters:
            detail += f"; {waiters} other waiter(s)"
        return LockTimeoutError(
            f"timed out after {budget:g}s waiting for named lock {name!r} on PostgreSQL ({mode}): {detail}",
            hint="try again later; the holder's host and pid are above",
        )

    def release(self, name: str) -> None:
        local = self._mine()
        held = local.held.get(name)
        if held is None:
            raise LockLostError(
                f"named lock {name!r} released but not held (its database session may have ended)",
                hint="the lock may have gone to another holder meanwhile",
            )
        held.count -= 1
        if held.count > 0:
            return
        del local.held[name]
        held.watch.stop()
        with self._all_guard:
            if held.watch in self._watches:  # not when close() came first
                self._watches.remove(held.watch)
        suffix = "_shared" if held.mode == SHARED else ""
        clean = False
        try:
            if held.watch.lost is not None:
                raise held.watch.lost
            try:
                rows = self._run(
                    held.session,
                    f"releasing named lock {name!r}",
                    "WITH mine AS (DELETE FROM gitxact.lock_holders WHERE ns = %(ns)s AND name = %(name)s"
                    f" AND session = pg_backend_pid()) SELECT pg_advisory_unlock{suffix}(%(k)s)",
                    {"ns": self._db.ns.ident, "name": name, "k": lock_key(self._db.ns, name)},
                )
            except BackendUnavailableError as exc:
                raise LockLostError(f"named lock {name!r} was lost with its database session: {exc.message}") from None
            if not rows or not rows[0][0]:
                raise LockLostError(f"named lock {name!r} was no longer held by this session when released")
            clean = held.watch.lost is None
        finally:
            if clean and len(local.idle) < _IDLE_SESSIONS:
                local.idle.append(held.session)  # it holds nothing now: the next acquire's
            else:
                held.session.close()  # its own session: closing it ends whatever it still held

    def check(self, name: str) -> None:
        held = self._mine().held.get(name)
        if held is not None and held.watch.lost is not None:
            raise held.watch.lost
        if held is None or held.session.closed:
            raise LockLostError(f"named lock {name!r} is not held (its database session ended)")
        try:
            self._run(held.session, f"checking named lock {name!r}", "SELECT 1")
        except BackendUnavailableError as exc:
            if held.watch.lost is not None:  # given up (and its session closed) while this check waited
                raise held.watch.lost from None
            raise LockLostError(f"named lock {name!r} was lost with its database session: {exc.message}") from None
        if held.watch.lost is not None:
            raise held.watch.lost

    # -- who holds, who waits -------------------------------------------------------------

    def _query(self, doing: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return self._run(self._session(), doing, sql, params)

    def holders(self, name: str) -> list[Party]:
        rows = self._query(
            f"listing the holders of {name!r}",
            "SELECT h.session, h.mode, h.pid, h.host, h.agent, h.command, h.since FROM gitxact.lock_holders h"
            f" JOIN pg_locks l ON l.pid = h.session AND l.granted AND {IN_PG_LOCKS}"
            " WHERE h.ns = %(ns)s AND h.name = %(name)s ORDER BY h.since",
            {"ns": self._db.ns.ident, "name": name, **lock_tag(lock_key(self._db.ns, name))},
        )
        return [
            Party(
                ticket=f"postgresql session {session}",
                mode=mode,
                holding=True,
                pid=pid or 0,
                host=host,
                agent=agent,
                command=command,
                since=since,
            )
            for session, mode, pid, host, agent, command, since in rows
        ]

    def _waiters(self, name: str) -> int:
        rows = self._query(
            f"counting the waiters of {name!r}",
            f"SELECT count(*) FROM pg_locks l WHERE NOT l.granted AND {IN_PG_LOCKS} AND l.pid <> pg_backend_pid()",
            lock_tag(lock_key(self._db.ns, name)),
        )
        return int(rows[0][0]) if rows else 0

    def waiting_sessions(self, name: str) -> list[int]:
        """Backend pids queued for *name*, in no particular order (tests wait on it)."""
        rows = self._query(
            f"listing the waiters of {name!r}",
            f"SELECT l.pid FROM pg_locks l WHERE NOT l.granted AND {IN_PG_LOCKS}",
            lock_tag(lock_key(self._db.ns, name)),
        )
        return [int(r[0]) for r in rows]
