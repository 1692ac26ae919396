"""The ``--json`` documents of ``tx``, ``tdd`` and the transactions part of ``status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

from pydantic import BaseModel

from gitxact.core.documents import Document
from gitxact.tx.journal import SavepointRecord, TxRecord, all_journals, condition

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.tx.checks import CheckResult


class SavepointDoc(BaseModel):
    name: str
    ref: str | None
    snapshot_ref: str
    head: str | None
    branch: str | None
    created: float

    @classmethod
    def of(cls, sp: SavepointRecord) -> SavepointDoc:
        return cls(
            name=sp.name,
            ref=sp.ref,
            snapshot_ref=sp.snapshot_ref,
            head=sp.head.commit,
            branch=sp.head.ref,
            created=sp.created,
        )


class StepDoc(BaseModel):
    op: str
    phase: str
    pid: int
    host: str
    since: float
    failed: str | None


class TddDoc(BaseModel):
    step: str
    start: str
    commits: list[str]
    passing: str | None


class TxInfo(BaseModel):
    """One open transaction (nested in ``tx list`` and ``status``)."""

    tx_id: str
    name: str | None
    state: str  # open | busy | abandoned
    kind: str
    worktree_id: str
    worktree: str
    namespace: str
    agent: str | None
    created: float
    held_by_pid: int | None
    savepoints: list[SavepointDoc]
    tdd: TddDoc | None
    step: StepDoc | None

    @classmethod
    def of(cls, tx: TxRecord) -> Self:
        step = tx.step
        return cls(
            tx_id=tx.tx_id,
            name=tx.name,
            state=condition(tx),
            kind=tx.kind,
            worktree_id=tx.worktree_id,
            worktree=tx.worktree,
            namespace=tx.namespace,
            agent=tx.agent,
            created=tx.created,
            held_by_pid=tx.holder.pid if tx.holder else None,
            savepoints=[SavepointDoc.of(sp) for sp in tx.savepoints],
            tdd=TddDoc(step=tx.tdd.step, start=tx.tdd.start, commits=tx.tdd.commits, passing=tx.tdd.passing)
            if tx.tdd
            else None,
            step=StepDoc(
                op=step.op,
                phase=step.phase,
                pid=step.owner.pid,
                host=step.owner.host,
                since=step.started,
                failed=step.failed,
            )
            if step
            else None,
        )


class TxDoc(TxInfo, Document):
    """``tx begin/commit --json``: the transaction as one document."""


class TxListDoc(Document):
    transactions: list[TxInfo]


class RollbackDoc(Document):
    tx_id: str
    rolled_back_to: str
    closed: bool
    head: str | None
    branch: str | None


class CheckDoc(BaseModel):
    command: str
    passed: bool
    returncode: int | None
    timed_out: bool
    seconds: float
    log: str

    @classmethod
    def of(cls, result: CheckResult) -> CheckDoc:
        return cls(
            command=result.spec.display,
            passed=result.passed,
            returncode=result.returncode,
            timed_out=result.timed_out,
            seconds=round(result.seconds, 3),
            log=str(result.log),
        )


class TddStepDoc(Document):
    tx_id: str
    step: str
    commit: str | None
    commits: list[str]
    closed: bool
    check: CheckDoc | None


def list_transactions(repo: Repo) -> TxListDoc:
    """Open transactions of every worktree (read without locks)."""
    found = [TxInfo.of(journal.tx) for journal in all_journals(repo).values() if journal.tx is not None]
    return TxListDoc(transactions=found)
