"""The PostgreSQL backend's connection: the tracker and named locks in a database every host reaches.

Imported only when a repository is configured for PostgreSQL (psycopg 3, the
``[postgresql]`` extra); :mod:`~gitxact.backends.pg_tracker` and
:mod:`~gitxact.backends.pg_locks` build on :class:`Database`. The failure model:

* **Unreachable** is exit 75 (:class:`BackendUnavailableError`), at connect and when a
  connection breaks mid-operation (then the operation was not acknowledged); never a
  fall-back to this host's files.
* **A dead peer is bounded.** A process killed on a live host: its kernel closes the
  socket and the server ends its session (and its advisory locks) at once. A host that
  vanishes (power, network cut): the server's TCP keepalives (idle
  :data:`KEEPALIVE_IDLE` s, then :data:`KEEPALIVE_COUNT` probes :data:`KEEPALIVE_INTERVAL`
  s apart) and ``tcp_user_timeout`` end its session within
  :data:`~gitxact.backends.bounds.DEAD_PEER_BOUND` s (every bound derives from it).
  The same settings on the client side bound how long a client waits on a server that
  vanished. Over a Unix socket keepalives do not apply (and are not needed: both ends
  are on one host).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from gitxact.backends import schema
from gitxact.backends.base import BackendUnavailableError
from gitxact.backends.bounds import (
    DEAD_PEER_BOUND,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
)
from gitxact.backends.choice import Choice, Namespace, mark, namespace
from gitxact.errors import LockTimeoutError, OperationFailedError, UsageError
from gitxact.util.identity import this_host

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

Conn = psycopg.Connection[tuple[Any, ...]]

CONNECT_TIMEOUT = 10
#: Test-only: the host name holder records and the agent registry give this process, so
#: one machine can play several hosts.
HOST_ENV = "GITXACT_TEST_HOST"

NOW = "extract(epoch FROM clock_timestamp())"


def host_identity() -> str:
    return os.environ.get(HOST_ENV) or this_host()


def _detail(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return (text[:300] + "...") if len(text) > 300 else text or type(exc).__name__


def connect(choice: Choice, *, lock_timeout: float = math.inf, purpose: str = "gitxact") -> Conn:
    """A connection in autocommit with gitxact's keepalive bounds; exit 75 when it cannot be made.

    What the URL (or libpq's ``PG*`` variables) sets wins over gitxact's defaults,
    except the server options, where gitxact's go first and the user's after (last wins).
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        given = conninfo_to_dict(choice.dsn) if choice.dsn else {}
    except psycopg.Error as exc:
        raise UsageError(f"cannot read the PostgreSQL URL {choice.describe()}: {_detail(exc)}") from None
    params: dict[str, Any] = {}
    defaults: list[tuple[str, str, object]] = [
        ("connect_timeout", "PGCONNECT_TIMEOUT", CONNECT_TIMEOUT),
        ("application_name", "PGAPPNAME", purpose),
        ("keepalives", "", 1),
        ("keepalives_idle", "", KEEPALIVE_IDLE),
        ("keepalives_interval", "", KEEPALIVE_INTERVAL),
        ("keepalives_count", "", KEEPALIVE_COUNT),
        ("tcp_user_timeout", "", DEAD_PEER_BOUND * 1000),
    ]
    for key, env, value in defaults:
        if key not in given and not (env and os.environ.get(env)):
            params[key] = value
    ours = [
        f"-c tcp_keepalives_idle={KEEPALIVE_IDLE}",
        f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL}",
        f"-c tcp_keepalives_count={KEEPALIVE_COUNT}",
        f"-c tcp_user_timeout={DEAD_PEER_BOUND * 1000}",
        f"-c lock_timeout={lock_timeout_ms(lock_timeout)}",
    ]
    theirs = str(given.get("options") or os.environ.get("PGOPTIONS") or "")
    params["options"] = " ".join([*ours, theirs]).strip()
    try:
        conn: Conn = psycopg.connect(choice.dsn, autocommit=True, **params)
    except psycopg.OperationalError as exc:
        raise BackendUnavailableError(
            f"cannot reach PostgreSQL at {choice.describe()}: {_detail(exc)}",
            hint="start the server or fix git config gitxact.backend / GITXACT_BACKEND and the PG* variables; "
            "gitxact never falls back to this host's files",
        ) from None
    return conn


def lock_timeout_ms(seconds: float) -> int:
    """PostgreSQL's ``lock_timeout``: 0 waits forever, so a finite wait is at least 1 ms."""
    if math.isinf(seconds) or seconds < 0:
        return 0
    return max(1, math.ceil(seconds * 1000))


def ensure_schema(conn: Conn, ns: Namespace) -> list[int]:
    """The schema current and *ns* registered: one query when they are (every command pays it)."""
    try:
        row = conn.execute(
            "SELECT (SELECT coalesce(max(version), 0) FROM gitxact.schema_version),"
            " EXISTS (SELECT 1 FROM gitxact.namespaces WHERE ident = %s)",
            (ns.ident,),
        ).fetchone()
        version, registered = (int(row[0]), bool(row[1])) if row else (0, False)
    except (pg_errors.UndefinedTable, pg_errors.InvalidSchemaName):
        version, registered = 0, False
    schema.refuse_newer(version)
    applied = schema.migrate(conn) if version < schema.LATEST else []
    if not registered:
        register_namespace(conn, ns)
    return applied


def register_namespace(conn: Conn, ns: Namespace) -> None:
    conn.execute(
        "INSERT INTO gitxact.namespaces (ident, name, root, created) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (ident) DO NOTHING",
        (ns.ident, ns.name, ns.root, time.time()),
    )


class Database:
    """How this process reaches one namespace: connections made on demand, the schema
    checked (and migrated) once, every failure turned into gitxact's errors."""

    def __init__(
        self, choice: Choice, ns: Namespace, *, lock_timeout: float, on_ready: Callable[[], None] | None = None
    ) -> None:
        self.choice = choice
        self.ns = ns
        self.lock_timeout = lock_timeout
        self._on_ready = on_ready
        self._checked = False

    @classmethod
    def of(cls, repo: Repo, choice: Choice) -> Database:
        """The namespace of *repo*; the clone is marked as on PostgreSQL once the server answers."""
        ns = namespace(repo)
        return cls(choice, ns, lock_timeout=repo.locks.default_timeout, on_ready=lambda: mark(repo, choice, ns))

    def describe(self) -> str:
        return f"{self.choice.describe()} (namespace {self.ns.ident})"

    def connect(self, purpose: str = "gitxact") -> Conn:
        conn = connect(self.choice, lock_timeout=self.lock_timeout, purpose=purpose)
        if not self._checked:
            try:
                ensure_schema(conn, self.ns)
            except psycopg.Error as exc:
                conn.close()
                raise self.failure(exc, "checking the schema", conn) from None
            if self._on_ready is not None:
                self._on_ready()
            self._checked = True
        return conn

    def failure(self, exc: psycopg.Error, doing: str, conn: Conn | None) -> Exception:
        """The gitxact error for *exc*: a lost connection is exit 75 (not acknowledged)."""
        if conn is None or conn.broken or conn.closed or isinstance(exc, pg_errors.AdminShutdown):
            return BackendUnavailableError(
                f"lost the connection to PostgreSQL at {self.choice.describe()} during {doing}: {_detail(exc)}",
                hint="it was not acknowledged: it may not have happened; retry once the server is back",
            )
        if isinstance(exc, pg_errors.LockNotAvailable):
            return LockTimeoutError(
                f"timed out after {self.lock_timeout:g}s waiting during {doing} on PostgreSQL: {_detail(exc)}",
                hint="try again later",
            )
        if isinstance(exc, psycopg.DataError):
            return UsageError(f"PostgreSQL cannot store this for {doing}: {_detail(exc)}")
        return OperationFailedError(f"PostgreSQL refused {doing}: {_detail(exc)}")
