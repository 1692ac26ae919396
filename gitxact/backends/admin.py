"""Choosing a backend for good (``gitxact init --backend``) and checking it (``gitxact doctor``).

Switching writes git config ``gitxact.backend`` (this clone's) only after the server
answered and the schema is in place, so a typo or a stopped server leaves the clone as
it was (exit 75 or 2). Nothing moves between backends: entries and locks of the old one
stay where they were.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from gitxact.backends.choice import (
    BACKEND_ENV,
    FILES,
    Choice,
    choose,
    forget_marker,
    mark,
    namespace,
    parse_backend,
)
from gitxact.errors import GitxactError, UsageError
from gitxact.util.value import Value

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class BackendSetup(Value):
    """What ``init --backend`` did: the backend (password hidden), namespace and schema version."""

    __slots__ = ("applied", "backend", "kind", "namespace", "schema_version")

    def __init__(
        self, *, kind: str, backend: str, namespace: str | None, schema_version: int | None, applied: list[int]
    ) -> None:
        self.kind = kind
        self.backend = backend
        self.namespace = namespace
        self.schema_version = schema_version
        self.applied = applied


class BackendFinding(Value):
    """One inconsistency ``doctor`` reports about the backend (see ``health.doctor.Finding``)."""

    __slots__ = ("fixed", "problem", "repair")

    def __init__(self, problem: str, repair: str, *, fixed: bool = False) -> None:
        self.problem = problem
        self.repair = repair
        self.fixed = fixed


def select_backend(repo: Repo, value: str) -> BackendSetup:
    """Make *value* (``files``, ``postgresql`` or a URL) this clone's backend, checked first."""
    choice = parse_backend(value, "--backend")
    from_env = os.environ.get(BACKEND_ENV, "").strip()
    if from_env:
        env_choice = parse_backend(from_env, BACKEND_ENV)
        if (env_choice.kind, env_choice.dsn) != (choice.kind, choice.dsn):
            raise UsageError(
                f"{BACKEND_ENV}={env_choice.describe()} disagrees with --backend {choice.describe()}",
                hint=f"unset {BACKEND_ENV} first: two backends at once would be split brain",
            )
    if choice.kind == FILES:
        repo.git(["config", "--local", "--unset-all", "gitxact.backend"], check=False)
        forget_marker(repo)
        return BackendSetup(kind=FILES, backend=FILES, namespace=None, schema_version=None, applied=[])
    return _select_postgres(repo, choice)


def _select_postgres(repo: Repo, choice: Choice) -> BackendSetup:
    from gitxact.backends import schema
    from gitxact.backends.postgres import connect, ensure_schema

    ns = namespace(repo)
    conn = connect(choice)  # exit 75 here leaves config and marker untouched
    try:
        applied = ensure_schema(conn, ns)
    finally:
        conn.close()
    mark(repo, choice, ns)
    if choice.dsn:
        repo.git(["config", "--local", "gitxact.backend", choice.dsn])
    else:
        repo.git(["config", "--local", "gitxact.backend", "postgresql"])
    return BackendSetup(
        kind=choice.kind,
        backend=choice.describe(),
        namespace=ns.ident,
        schema_version=schema.LATEST,
        applied=applied,
    )


def check_backend(repo: Repo, fix: bool) -> list[BackendFinding]:
    """The configured backend is usable: a consistent choice, a reachable server, the
    schema current, this namespace registered, no holder record of an ended session."""
    try:
        choice = choose(repo)
    except GitxactError as exc:
        return [BackendFinding(exc.message, exc.hint or "make the backend settings agree")]
    if choice.kind == FILES:
        return []
    return _check_postgres(repo, choice, fix)


def _check_postgres(repo: Repo, choice: Choice, fix: bool) -> list[BackendFinding]:
    import psycopg

    from gitxact.backends import schema
    from gitxact.backends.base import BackendUnavailableError
    from gitxact.backends.postgres import connect, register_namespace

    ns = namespace(repo)
    try:
        conn = connect(choice)
    except BackendUnavailableError as exc:
        return [BackendFinding(exc.message, "start the server, or point gitxact.backend at one that runs")]
    findings: list[BackendFinding] = []
    with conn:
        try:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM gitxact.schema_version").fetchone()
            version = int(row[0]) if row else 0
        except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
            version = 0
        if version > schema.LATEST:
            findings.append(
                BackendFinding(
                    f"the database's schema is at version {version}, newer than this gitxact ({schema.LATEST})",
                    "upgrade gitxact on this host",
                )
            )
            return findings
        if version < schema.LATEST:
            finding = BackendFinding(
                f"the database's schema is at version {version}, this gitxact uses {schema.LATEST}",
                f"migrate it to version {schema.LATEST}",
            )
            if fix:
                schema.migrate(conn)
                finding.fixed = True
            findings.append(finding)
            if not fix:
                return findings
        registered = conn.execute("SELECT 1 FROM gitxact.namespaces WHERE ident = %s", (ns.ident,)).fetchone()
        if registered is None:
            finding = BackendFinding(f"namespace {ns.ident} is not registered in the database", "register it")
            if fix:
                register_namespace(conn, ns)
                finding.fixed = True
            findings.append(finding)
        stale = conn.execute(
            "SELECT name, session, host, pid FROM gitxact.lock_holders h WHERE ns = %s"
            " AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = h.session) ORDER BY name, session",
            (ns.ident,),
        ).fetchall()
        for name, session, host, pid in stale:
            finding = BackendFinding(
                f"named lock {name!r}: holder record of pid {pid} on {host}, whose database session {session} ended",
                "remove the record (the lock itself ended with the session)",
            )
            if fix:
                conn.execute(
                    "DELETE FROM gitxact.lock_holders WHERE ns = %s AND name = %s AND session = %s",
                    (ns.ident, name, session),
                )
                finding.fixed = True
            findings.append(finding)
    return findings
