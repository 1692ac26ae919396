"""The documents of the database's part of ``gitxact status``: which server, whether it
answers, who holds and who waits for named locks across the fleet, the agent registry in
short.

Plain ``TypedDict`` values, JSON as they are, so ``status --json`` prints them whatever
builds its document; psycopg-free, so the status of a repository on files can name the
type without importing the driver. :mod:`gitxact.backends.pg_overview` fills them in,
:mod:`gitxact.health.database` decides whether there is anything to fill.
"""

from __future__ import annotations

from typing_extensions import TypedDict


class DbPartyDoc(TypedDict):
    """A holder or waiter of a named lock: the process (on its host) and its database session."""

    mode: str
    state: str
    host: str | None
    pid: int | None
    agent: str | None
    command: str | None
    since: float
    age: float
    session: int


class DbLockDoc(TypedDict):
    name: str
    holders: list[DbPartyDoc]
    waiters: list[DbPartyDoc]


class HostClaimsDoc(TypedDict):
    """One host's claims in the agent registry: how many, how many of them expired."""

    host: str
    claims: int
    expired: int


class ExpiredClaimDoc(TypedDict):
    """A claim past its TTL: ``gitxact worktree reap`` on any host of the fleet ends it."""

    agent: str
    branch: str
    host: str
    pid: int
    expired_for: float


class ClaimsDoc(TypedDict):
    total: int
    hosts: list[HostClaimsDoc]
    expired: list[ExpiredClaimDoc]


class DatabaseDoc(TypedDict):
    """``status``'s ``database`` section (``None`` on the file backend)."""

    backend: str
    namespace: str
    reachable: bool
    #: Why it is not reachable (or what failed while reading it); ``None`` when all went well.
    error: str | None
    schema_version: int | None
    locks: list[DbLockDoc]
    claims: ClaimsDoc | None


def unreached(backend: str, ident: str, error: str | None) -> DatabaseDoc:
    """The document of a database that was not (yet) read: nothing held, nothing claimed."""
    return {
        "backend": backend,
        "namespace": ident,
        "reachable": False,
        "error": error,
        "schema_version": None,
        "locks": [],
        "claims": None,
    }
