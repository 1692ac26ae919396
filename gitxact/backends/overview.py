"""The database's part of ``gitxact status``: which server, whether it answers, who holds
and who waits for named locks across the fleet, and the agent registry in short.

Only a repository on PostgreSQL has one: on files :func:`database_overview` returns
``None`` having read git config and nothing else, so ``gitxact status`` on files never
imports psycopg (``tests/test_light_paths.py``). The documents are plain ``TypedDict``
values, JSON as they are, so ``status --json`` prints them whatever builds its document.

An unreachable server is not an error here: status is what a person runs to find out
what is wrong, so it says ``reachable: false`` and why, and shows everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from typing_extensions import TypedDict

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


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


def database_overview(repo: Repo) -> DatabaseDoc | None:
    """The database's holders, waiters and claims; ``None`` when *repo* coordinates on files.

    Backend settings that every command would refuse (the environment and git config
    disagreeing, a clone marked as on PostgreSQL about to use files) are shown as such,
    unreachable: status is where a person looks to find out why the others fail.
    """
    from gitxact.backends.choice import FILES, choose
    from gitxact.errors import GitxactError

    try:
        choice = choose(repo)
    except GitxactError as exc:
        return unreached("refused", "", exc.message)
    if choice.kind == FILES:
        return None
    from gitxact.backends.pg_overview import read_overview

    return read_overview(repo, choice)


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
