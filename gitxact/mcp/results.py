"""The MCP tools' results that have no ``--json`` document of their own (the others return it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from gitxact.tx.results import CheckDoc


class TxState(BaseModel):
    tx_id: str
    name: str | None
    savepoints: list[str]
    #: False once the transaction ended (commit, a rollback to its start).
    open: bool


class TddStep(BaseModel):
    """``tdd red|green|refactor|done --json``'s fields, and ``check_log`` (the check's log, as before)."""

    tx_id: str
    step: str
    commit: str | None
    commits: list[str]
    check_log: str | None
    closed: bool = False
    check: CheckDoc | None = None


class TrackerEntry(BaseModel):
    key: str
    value: Any
    version: int
    updated: float
    by: str | None


class TrackerEntries(BaseModel):
    result: list[TrackerEntry]


class LockView(BaseModel):
    name: str
    holders: list[str]
    waiters: list[str]


class LeaseView(BaseModel):
    agent: str
    branch: str
    path: str
    live: bool
    dirty: bool | None


class Fleet(BaseModel):
    """Every agent's lease, the locks, every open transaction (``status`` with ``all``)."""

    locks: list[LockView]
    leases: list[LeaseView]
    transactions: list[str]


class OwnLease(BaseModel):
    path: str
    branch: str
    base: str
    base_commit: str | None
    head: str | None
    #: Commits on the branch since its base.
    ahead: int
    #: Uncommitted or untracked work in the worktree.
    dirty: bool
    expires: float


class QueuePlace(BaseModel):
    request: str
    target: str
    state: str
    #: 1: next (or being served); counts the requests filed before it for the same target.
    position: int


class Status(BaseModel):
    agent: str
    #: This agent's worktree, if it holds a lease.
    worktree: str | None
    lease: OwnLease | None
    transaction: TxState | None
    queue: list[QueuePlace] = Field(default_factory=list)
    #: Only with ``all``.
    fleet: Fleet | None = None
