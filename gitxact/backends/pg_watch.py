"""A named lock's holder gives it up before the server can hand it to someone else.

The server ends a silent host's session, and frees its advisory locks, no sooner than
:data:`~gitxact.backends.bounds.DEAD_PEER_BOUND` seconds after it last heard from it
(keepalives and ``tcp_user_timeout`` count from the last segment received). Whatever the
server answered, it received after it was sent, so a holder knows its lock is safe until
that bound past the *sending* of its last answered statement. A :class:`SessionWatch`
sends one every :data:`~gitxact.backends.bounds.CHECK_INTERVAL` on the lock's own session
and, with no answer :data:`~gitxact.backends.bounds.HOLDER_BOUND` after the last answered
send, declares the lock lost: it closes the session (so a link that comes back frees the
lock at once) and calls the holder's callbacks, while half the server's bound is left.

The probe is sent with libpq's non-blocking calls under psycopg's connection lock, so it
never waits past the bound (a blocking ``execute`` on a cut link waits for the whole
``tcp_user_timeout``) and never runs beside another statement of the same connection.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq

from gitxact.backends.bounds import CHECK_INTERVAL, DEAD_PEER_BOUND, HOLDER_BOUND
from gitxact.errors import LockLostError

if TYPE_CHECKING:
    from gitxact.backends.postgres import Conn

LostCallback = Callable[[LockLostError], None]


def now() -> float:
    """Seconds on a clock that keeps counting while the machine sleeps (``CLOCK_BOOTTIME``):
    the server's timers run on during a suspend, so a holder's must too, or a laptop that
    slept past the bound would wake up believing it still holds its lock."""
    return time.clock_gettime(_CLOCK)


_CLOCK = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class SessionWatch:
    """Confirms one lock session until stopped; :attr:`lost` once it could not."""

    def __init__(self, conn: Conn, name: str, confirmed: float) -> None:
        self._conn = conn
        self._name = name
        #: :func:`now` when the last statement the server answered was sent.
        self._confirmed = confirmed
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._callbacks: list[LostCallback] = []
        self.lost: LockLostError | None = None
        self._thread = threading.Thread(target=self._run, name=f"gitxact lock watch {name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def add_callback(self, callback: LostCallback | None) -> None:
        """Call *callback* once if the lock is lost (at once if it already was)."""
        if callback is None:
            return
        with self._guard:
            lost = self.lost
            if lost is None:
                self._callbacks.append(callback)
        if lost is not None:
            callback(lost)

    def stop(self) -> None:
        """Stop confirming (the lock is being released); waits at most for one probe."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(HOLDER_BOUND)

    def _run(self) -> None:
        while not self._stop.wait(CHECK_INTERVAL):
            sent = now()
            why = self._probe(self._confirmed + HOLDER_BOUND)
            if self._stop.is_set():
                return
            if why is None:
                self._confirmed = sent
                continue
            self._lose(why)
            return

    def _lose(self, why: str) -> None:
        error = LockLostError(
            f"named lock {self._name!r} was given up: {why} within {HOLDER_BOUND:g}s, and the server frees it"
            f" {DEAD_PEER_BOUND}s after it last heard from this host",
            hint="the lock may be someone else's now; what ran under it was stopped; run it again",
        )
        with self._guard:
            self.lost = error
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            with contextlib.suppress(Exception):  # one holder's callback must not keep the others from running
                callback(error)

    def _probe(self, deadline: float) -> str | None:
        """``SELECT 1`` on the lock's session, answered by *deadline*; else why not."""
        conn = self._conn
        if not conn.lock.acquire(timeout=max(0.0, deadline - now())):
            return "the session was busy and could not be confirmed"
        try:
            if conn.closed or conn.broken:
                return "its database session ended"
            why = self._exchange(conn.pgconn, deadline)
            if why is not None:
                # Mid-query or broken: useless now, and closing it frees the lock the moment
                # the link is back rather than at the server's bound.
                conn.close()
            return why
        finally:
            conn.lock.release()

    @staticmethod
    def _exchange(pgconn: pq.abc.PGconn, deadline: float) -> str | None:
        try:
            pgconn.send_query(b"SELECT 1")
            while pgconn.flush():
                if not _ready(pgconn.socket, select.POLLOUT, deadline):
                    return "PostgreSQL could not be reached"
            while True:
                pgconn.consume_input()
                if not pgconn.is_busy():
                    break
                if not _ready(pgconn.socket, select.POLLIN, deadline):
                    return "PostgreSQL did not answer"
            ok = True
            while (result := pgconn.get_result()) is not None:
                ok = ok and result.status == pq.ExecStatus.TUPLES_OK
        except (psycopg.Error, OSError) as exc:
            return f"the connection to PostgreSQL failed ({' '.join(str(exc).split())[:200]})"
        return None if ok else "PostgreSQL refused the check"


def _ready(fd: int, event: int, deadline: float) -> bool:
    """Whether *fd* gets *event* before *deadline* (:func:`now`)."""
    poller = select.poll()
    poller.register(fd, event | select.POLLERR | select.POLLHUP)
    left = deadline - now()
    return left > 0 and bool(poller.poll(left * 1000))
