"""The tracker in PostgreSQL: rows of ``gitxact.tracker``, one statement per operation.

Each operation is one SQL statement in its own transaction (autocommit): an upsert
that reads and writes the row under its row lock, so concurrent ``incr`` calls from
any number of hosts lose nothing, and compare-and-set is a ``WHERE version = N``.
A statement cut off by a lost connection is reported as not acknowledged (exit 75):
PostgreSQL rolled it back unless its commit had already happened, which the client
cannot tell; the tests restart the server under 16 writers and find exactly the
acknowledged count.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Json

from gitxact.backends.base import BackendUnavailableError, TrackerEntry, check_value
from gitxact.backends.postgres import NOW, Database
from gitxact.errors import OperationFailedError, VersionConflictError
from gitxact.util.names import validate_key

if TYPE_CHECKING:
    from gitxact.backends.choice import Choice
    from gitxact.backends.postgres import Conn
    from gitxact.core.repo import Repo

_ENTRY = "value, version, updated, by_agent"


class PostgresTracker:
    """The tracker's entries as rows of ``gitxact.tracker``; values stored as ``json`` (kept
    as written, key order included, like the file)."""

    def __init__(self, db: Database, agent: str | None = None) -> None:
        self._db = db
        self._agent = agent
        self._conn: Conn | None = None
        self._pid = 0
        self._guard = threading.Lock()

    @classmethod
    def open(cls, repo: Repo, choice: Choice) -> PostgresTracker:
        return cls(Database.of(repo, choice), repo.agent)

    @property
    def path(self) -> str:
        return self._db.describe()

    def __del__(self) -> None:
        # A Workspace's tracker lives as long as the Workspace; its connection goes with it.
        self.close()

    def close(self) -> None:
        with self._guard:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def _rows(self, doing: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run one statement (its own transaction) and fetch its rows."""
        with self._guard:  # one statement at a time on the shared connection, from any thread
            if self._conn is None or self._conn.closed or self._pid != os.getpid():
                self._conn = self._db.connect("gitxact tracker")
                self._pid = os.getpid()
            conn = self._conn
            try:
                cursor = conn.execute(sql, {"ns": self._db.ns.ident, "by": self._agent, **params})
                return cursor.fetchall() if cursor.description else []
            except psycopg.Error as exc:
                error = self._db.failure(exc, doing, conn)
                if isinstance(error, BackendUnavailableError):
                    conn.close()
                    self._conn = None
                raise error from None

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> TrackerEntry:
        value, version, updated, by = row
        return TrackerEntry(value=value, version=int(version), updated=float(updated), by=by)

    def _version(self, key: str) -> tuple[int, Any]:
        sql = "SELECT version, value FROM gitxact.tracker WHERE ns = %(ns)s AND key = %(key)s"
        rows = self._rows("tracker get", sql, {"key": key})
        return (int(rows[0][0]), rows[0][1]) if rows else (0, None)

    def get(self, key: str | None = None) -> dict[str, TrackerEntry]:
        if key is None:
            rows = self._rows("tracker get", f"SELECT key, {_ENTRY} FROM gitxact.tracker WHERE ns = %(ns)s", {})
            return {row[0]: self._entry(row[1:]) for row in rows}
        validate_key(key)
        rows = self._rows(
            "tracker get", f"SELECT {_ENTRY} FROM gitxact.tracker WHERE ns = %(ns)s AND key = %(key)s", {"key": key}
        )
        if not rows:
            raise OperationFailedError(f"tracker has no key {key!r}")
        return {key: self._entry(rows[0])}

    def set(self, key: str, value: Any, expect_version: int | None = None) -> TrackerEntry:
        validate_key(key)
        check_value(value)
        params = {"key": key, "value": Json(value), "expect": expect_version}
        insert = (
            "INSERT INTO gitxact.tracker AS t (ns, key, value, version, updated, by_agent)"
            f" VALUES (%(ns)s, %(key)s, %(value)s, 1, {NOW}, %(by)s)"
        )
        if expect_version is None:
            sql = (
                f"{insert} ON CONFLICT (ns, key) DO UPDATE SET value = EXCLUDED.value, version = t.version + 1,"
                f" updated = EXCLUDED.updated, by_agent = EXCLUDED.by_agent RETURNING {_ENTRY}"
            )
        elif expect_version == 0:
            sql = f"{insert} ON CONFLICT (ns, key) DO NOTHING RETURNING {_ENTRY}"
        else:
            sql = (
                f"UPDATE gitxact.tracker SET value = %(value)s, version = version + 1, updated = {NOW},"
                " by_agent = %(by)s WHERE ns = %(ns)s AND key = %(key)s AND version = %(expect)s"
                f" RETURNING {_ENTRY}"
            )
        rows = self._rows("tracker set", sql, params)
        if not rows:
            current, _ = self._version(key)
            raise VersionConflictError(
                f"tracker key {key!r} is at version {current}, not {expect_version}",
                hint="read it again (`gitxact tracker get KEY --json`) and retry with the new version",
            )
        return self._entry(rows[0])

    def incr(self, key: str, amount: int = 1) -> TrackerEntry:
        validate_key(key)
        rows = self._rows(
            "tracker incr",
            "INSERT INTO gitxact.tracker AS t (ns, key, value, version, updated, by_agent)"
            f" VALUES (%(ns)s, %(key)s, to_json(%(amount)s::numeric), 1, {NOW}, %(by)s)"
            " ON CONFLICT (ns, key) DO UPDATE SET value = to_json((t.value #>> '{}')::numeric + %(amount)s::numeric),"
            " version = t.version + 1, updated = EXCLUDED.updated, by_agent = EXCLUDED.by_agent"
            # Integers only, as on files: no float, no bool, no string of digits.
            " WHERE json_typeof(t.value) = 'number' AND (t.value #>> '{}') ~ '^-?[0-9]+$'"
            f" RETURNING {_ENTRY}",
            {"key": key, "amount": amount},
        )
        if not rows:
            _, base = self._version(key)
            raise OperationFailedError(f"tracker key {key!r} holds {type(base).__name__}, not an integer")
        return self._entry(rows[0])

    def delete(self, key: str, expect_version: int | None = None) -> None:
        validate_key(key)
        rows = self._rows(
            "tracker delete",
            "DELETE FROM gitxact.tracker WHERE ns = %(ns)s AND key = %(key)s"
            " AND (%(expect)s::bigint IS NULL OR version = %(expect)s::bigint) RETURNING version",
            {"key": key, "expect": expect_version},
        )
        if rows:
            return
        current, _ = self._version(key)
        if current == 0:
            raise OperationFailedError(f"tracker has no key {key!r}")
        raise VersionConflictError(f"tracker key {key!r} is at version {current}, not {expect_version}")
