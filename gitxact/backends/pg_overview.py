"""Reading the fleet's coordination state out of PostgreSQL for ``gitxact status``.

Three read-only queries on one short-lived connection: the schema version, every
named lock of the namespace with a holder or a waiter, and the agent registry counted
per host. Who holds or waits is ``gitxact.lock_holders`` (written by
:mod:`~gitxact.backends.pg_locks` before a wait and after a grant) joined with
``pg_locks``, which alone says whether a session holds the lock now: a row whose session
ended, or that no longer waits, is never shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

from gitxact.backends.base import BackendUnavailableError
from gitxact.backends.overview import (
    ClaimsDoc,
    DatabaseDoc,
    DbLockDoc,
    DbPartyDoc,
    ExpiredClaimDoc,
    HostClaimsDoc,
    unreached,
)
from gitxact.backends.pg_locks import lock_key, lock_tag
from gitxact.backends.postgres import NOW, Database
from gitxact.errors import GitxactError

if TYPE_CHECKING:
    from gitxact.backends.choice import Choice, Namespace
    from gitxact.backends.postgres import Conn
    from gitxact.core.repo import Repo

_PARTIES = (
    "SELECT h.name, h.session, h.mode, h.host, h.pid, h.agent, h.command, h.since, l.granted,"
    " l.classid::bigint, l.objid::bigint FROM gitxact.lock_holders h JOIN pg_locks l ON l.pid = h.session"
    " AND l.locktype = 'advisory' AND l.objsubid = 1"
    " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " WHERE h.ns = %(ns)s ORDER BY h.name, h.since"
)

_CLAIMS = (
    f"SELECT agent, branch, host, pid, heartbeat + ttl, {NOW} FROM gitxact.agents WHERE ns = %(ns)s"
    " ORDER BY host, created, agent"
)


def read_overview(repo: Repo, choice: Choice) -> DatabaseDoc:
    """What status shows of the database; a server that does not answer is ``reachable: false``."""
    try:
        db = Database.of(repo, choice)
    except GitxactError as exc:  # no commit yet to name the project by: nothing to look up
        return unreached(choice.describe(), "", exc.message)
    doc = unreached(choice.describe(), db.ns.ident, None)
    try:
        conn = db.connect("gitxact status")
    except GitxactError as exc:
        doc["error"] = exc.message
        return doc
    doc["reachable"] = True
    try:
        with conn:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM gitxact.schema_version").fetchone()
            doc["schema_version"] = int(row[0]) if row else None
            doc["locks"] = _locks(conn, db.ns)
            doc["claims"] = _claims(conn, db.ns)
    except psycopg.Error as exc:
        error = db.failure(exc, "reading the fleet's locks and claims", conn)
        doc["reachable"] = not isinstance(error, BackendUnavailableError)
        doc["error"] = error.message if isinstance(error, GitxactError) else str(error)
    return doc


def _locks(conn: Conn, ns: Namespace) -> list[DbLockDoc]:
    """Holders and waiters by lock name, oldest first; a session's row counts only for the
    advisory lock its name hashes to (a session may hold or await several)."""
    found: dict[str, DbLockDoc] = {}
    now_row = conn.execute(f"SELECT {NOW}").fetchone()
    now = float(now_row[0]) if now_row else 0.0
    for name, session, mode, host, pid, agent, command, since, granted, classid, objid in conn.execute(
        _PARTIES, {"ns": ns.ident}
    ):
        tag = lock_tag(lock_key(ns, name))
        if (classid, objid) != (tag["classid"], tag["objid"]):
            continue
        party: DbPartyDoc = {
            "mode": mode,
            "state": "holding" if granted else "waiting",
            "host": host,
            "pid": pid,
            "agent": agent,
            "command": command,
            "since": round(float(since), 3),
            "age": round(max(0.0, now - float(since)), 3),
            "session": int(session),
        }
        lock = found.setdefault(name, {"name": name, "holders": [], "waiters": []})
        lock["holders" if granted else "waiters"].append(party)
    return list(found.values())


def _claims(conn: Conn, ns: Namespace) -> ClaimsDoc:
    hosts: dict[str, HostClaimsDoc] = {}
    expired: list[ExpiredClaimDoc] = []
    total = 0
    for agent, branch, host, pid, ends, now in conn.execute(_CLAIMS, {"ns": ns.ident}):
        total += 1
        entry = hosts.setdefault(host, {"host": host, "claims": 0, "expired": 0})
        entry["claims"] += 1
        late = float(now) - float(ends)
        if late > 0:
            entry["expired"] += 1
            expired.append(
                {"agent": agent, "branch": branch, "host": host, "pid": int(pid), "expired_for": round(late, 3)}
            )
    return {"total": total, "hosts": list(hosts.values()), "expired": expired}
