"""The database schema gitxact keeps in PostgreSQL, and its migrations.

Everything lives in the schema ``gitxact`` of the database the URL names, so one
database can serve many projects (rows carry their namespace) next to other
applications' tables. ``gitxact.schema_version`` has one row per migration applied.
Migrations run in one transaction under a transaction-scoped advisory lock: two hosts
starting at once apply each step once, and a failure leaves the previous version
whole. A database newer than this gitxact is refused rather than guessed at.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gitxact._version import __version__
from gitxact.errors import OperationFailedError

if TYPE_CHECKING:
    import psycopg

#: ``pg_advisory_xact_lock`` key serializing migrations ("gitxact" in ASCII, as a number).
MIGRATION_LOCK = 0x67697478616374

#: (version, what it adds, statements). Append only: a released step never changes.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "namespaces, the tracker, named-lock holders",
        [
            """CREATE TABLE gitxact.namespaces (
                ident text PRIMARY KEY,
                name text NOT NULL,
                root text NOT NULL,
                created double precision NOT NULL
            )""",
            """CREATE TABLE gitxact.tracker (
                ns text NOT NULL REFERENCES gitxact.namespaces ON DELETE CASCADE,
                key text NOT NULL,
                value json NOT NULL,  -- kept as written (key order), like the file
                version bigint NOT NULL CHECK (version >= 1),
                updated double precision NOT NULL,
                by_agent text,
                PRIMARY KEY (ns, key)
            )""",
            # Who holds a named lock; the lock itself is an advisory lock of the session
            # ``session`` (a backend pid), so a row whose session is gone is stale.
            # Unlogged: no WAL flush per acquire and release (each an fsync when on);
            # a crash empties it, and takes every advisory lock with it anyway.
            """CREATE UNLOGGED TABLE gitxact.lock_holders (
                ns text NOT NULL,
                name text NOT NULL,
                session integer NOT NULL,
                mode text NOT NULL CHECK (mode IN ('shared', 'exclusive')),
                host text,
                pid integer,
                agent text,
                command text,
                since double precision NOT NULL,
                PRIMARY KEY (ns, name, session)
            )""",
        ],
    ),
    (
        2,
        "the agent registry",
        [
            # One row per agent name and per branch of a namespace: two hosts can never
            # lease the same one (gitxact.backends.pg_registry).
            """CREATE TABLE gitxact.agents (
                ns text NOT NULL REFERENCES gitxact.namespaces ON DELETE CASCADE,
                agent text NOT NULL,
                branch text NOT NULL,
                host text NOT NULL,
                pid integer NOT NULL,
                start numeric,
                path text,
                created double precision NOT NULL,
                heartbeat double precision NOT NULL,
                ttl double precision NOT NULL,
                PRIMARY KEY (ns, agent),
                UNIQUE (ns, branch)
            )""",
        ],
    ),
    (
        3,
        "the shared landing queue",
        [
            # One row per ``gitxact land`` request of a namespace (gitxact.land.shared):
            # ``seq`` is its place, first come first served across every clone and host;
            # ``request`` the whole request as gitxact models it, the columns beside it
            # what people and queries read. ``lander_*`` names the process serving it and
            # the database session holding the queue's lock; ``step`` is what that lander
            # published before it moved the target, so another host can settle the
            # request if it dies (the full step record stays in the lander's clone).
            """CREATE TABLE gitxact.land_requests (
                ns text NOT NULL REFERENCES gitxact.namespaces ON DELETE CASCADE,
                id text NOT NULL,
                seq bigint NOT NULL,
                queue text NOT NULL,
                target text NOT NULL,
                remote_url text,
                branch text NOT NULL,
                tip text NOT NULL,
                strategy text NOT NULL CHECK (strategy IN ('rebase', 'merge')),
                agent text,
                host text NOT NULL,
                clone text NOT NULL,
                state text NOT NULL
                    CHECK (state IN ('pending', 'serving', 'landed', 'refused', 'failed', 'withdrawn')),
                outcome jsonb,
                request jsonb NOT NULL,
                filed double precision NOT NULL,
                finished double precision,
                lander_clone text,
                lander_host text,
                lander_pid integer,
                lander_session integer,
                step jsonb,
                PRIMARY KEY (ns, id),
                UNIQUE (ns, seq)
            )""",
            "CREATE INDEX land_requests_open ON gitxact.land_requests (ns, queue, seq)"
            " WHERE state IN ('pending', 'serving')",
        ],
    ),
    (
        4,
        "fencing tokens of named locks, the token of each agent claim",
        [
            # The last fence handed out per name (gitxact.backends.pg_locks): only ever
            # incremented, and logged (not UNLOGGED like lock_holders), so a crash of the
            # server never hands out a number it handed out before.
            """CREATE TABLE gitxact.lock_fences (
                ns text NOT NULL REFERENCES gitxact.namespaces ON DELETE CASCADE,
                name text NOT NULL,
                fence bigint NOT NULL CHECK (fence >= 1),
                PRIMARY KEY (ns, name)
            )""",
            # Which lease a claim belongs to (a digest of the lease's token, never the
            # token): every change of a claim compares it with the owner (gitxact.worktrees.fleet).
            "ALTER TABLE gitxact.agents ADD COLUMN token text",
        ],
    ),
    (
        5,
        "the loopback ports of each agent claim",
        [
            # The ports of the claim's lease (gitxact.worktrees.ports): one host's claims,
            # whichever clone made them, never share one; they go with the row.
            "ALTER TABLE gitxact.agents ADD COLUMN ports integer[] NOT NULL DEFAULT '{}'",
        ],
    ),
]

LATEST = MIGRATIONS[-1][0]


def current_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The version of the schema in the database; 0 when gitxact never ran there.

    Called inside :func:`migrate`'s transaction, after the table is made, so it exists.
    """
    row = conn.execute("SELECT coalesce(max(version), 0) FROM gitxact.schema_version").fetchone()
    return int(str(row[0])) if row else 0


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Bring the schema to :data:`LATEST`; return the versions applied (none if current)."""
    applied: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS gitxact")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS gitxact.schema_version ("
            " version integer PRIMARY KEY, applied double precision NOT NULL, by_version text NOT NULL,"
            " what text NOT NULL)"
        )
        have = current_version(conn)
        refuse_newer(have)
        for version, what, statements in MIGRATIONS:
            if version <= have:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO gitxact.schema_version (version, applied, by_version, what) VALUES (%s, %s, %s, %s)",
                (version, time.time(), __version__, what),
            )
            applied.append(version)
    return applied


def refuse_newer(version: int) -> None:
    if version > LATEST:
        raise OperationFailedError(
            f"the database's gitxact schema is at version {version}, newer than this gitxact knows ({LATEST})",
            hint="upgrade gitxact on this host: every host of a fleet must run a gitxact that knows the schema",
        )
