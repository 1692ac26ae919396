"""The journaled steps of a transaction: write the journal, act, write it again.

Callers hold the worktree lock and pass the journal they loaded under it. Each step
first records what it is about to do (write-ahead), then does it, then records that
it is done. The ``finish_*``/``undo_*`` functions are exactly what ``gitxact recover``
runs for a step whose process died (:mod:`gitxact.tx.recovery`), so the live path and the
recovery path are the same code and a crash can only ever stop *between* two of
their idempotent actions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitxact.errors import OperationFailedError, RefusedError
from gitxact.git import snapshots
from gitxact.tx import savepoints
from gitxact.tx.journal import (
    HeadState,
    Journal,
    JournalFile,
    KeptRefs,
    Owner,
    SavepointRecord,
    Step,
    TddState,
    TxRecord,
)
from gitxact.util import console

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.tx.journal import Op

#: How a transaction ended, by the op that ended it (kept in the journal's history).
OUTCOMES: dict[str, str] = {
    "begin": "discarded: begin did not complete",
    "commit": "committed",
    "rollback": "rolled back",
    "red": "discarded: no TDD RED commit",
    "green": "rolled back: tdd green check failed",
    "refactor": "rolled back: tdd refactor check failed",
    "done": "committed: tdd done",
    "abort": "rolled back: tdd abort",
}


@dataclass
class Ctx:
    """One worktree's journal, loaded under its lock, and who acts on it now."""

    repo: Repo
    jf: JournalFile
    journal: Journal
    owner: Owner
    recovering: bool = False

    @property
    def tx(self) -> TxRecord:
        tx = self.journal.tx
        if tx is None:  # pragma: no cover - callers check first
            raise OperationFailedError("no transaction is open")
        return tx

    def write(self) -> None:
        self.jf.write(self.journal)


# -- begin / savepoint -----------------------------------------------------------------


def begin(
    ctx: Ctx,
    *,
    name: str | None,
    kind: str,
    holder: Owner | None,
    tdd: TddState | None = None,
    next_step: Step | None = None,
) -> TxRecord:
    """Open a transaction; ``next_step`` is journaled in the same write that completes it.

    (A TDD red step must never be seen as "sequence open, nothing in progress":
    recovery would then have no step telling it to discard the sequence.)
    """
    repo = ctx.repo
    dirty = snapshots.changed_submodules(repo.layout.require_worktree())
    if dirty:
        raise RefusedError(
            f"submodule {', '.join(dirty)} has uncommitted changes; a transaction cannot restore a "
            "submodule's own files, so rolling back would leave them as they are",
            hint="commit (or stash) inside the submodule first",
        )
    namespace = savepoints.namespace_for(repo)
    tx_id = savepoints.new_tx_id()
    sp = savepoints.capture(repo, namespace, tx_id, "start")
    tx = TxRecord(
        tx_id=tx_id,
        name=name,
        namespace=namespace,
        agent=repo.agent,
        worktree_id=repo.layout.worktree_id,
        worktree=str(repo.layout.require_worktree()),
        kind="tdd" if kind == "tdd" else "tx",
        created=time.time(),
        holder=holder,
        step=Step(op="begin", phase="refs", owner=ctx.owner, started=time.time(), savepoint=sp),
    )
    ctx.journal.tx = tx
    ctx.write()
    savepoints.create_refs(repo, sp.refs(), fresh=not ctx.recovering)
    tx.savepoints = [sp]
    tx.tdd = tdd
    tx.step = next_step
    ctx.write()
    repo.locks.events.emit("tx", repo.attribution, op="begin", tx=tx_id, kind=tx.kind)
    return tx


def add_savepoint(
    ctx: Ctx, name: str, *, op: Op = "savepoint", tdd: TddState | None = None, next_step: Step | None = None
) -> SavepointRecord:
    tx = ctx.tx
    sp = savepoints.capture(ctx.repo, tx.namespace, tx.tx_id, name)
    tx.step = Step(op=op, phase="refs", owner=ctx.owner, started=time.time(), savepoint=sp)
    ctx.write()
    savepoints.create_refs(ctx.repo, sp.refs())
    tx.savepoints.append(sp)
    if tdd is not None:
        tx.tdd = tdd
    tx.step = next_step
    ctx.write()
    return sp


def undo_refs(ctx: Ctx) -> None:
    """Recovery of an interrupted ``begin``/``savepoint``: as if it never ran."""
    tx = ctx.tx
    step = tx.step
    if step is None or step.savepoint is None:
        return
    savepoints.delete_refs(ctx.repo, step.savepoint.refs())
    if step.op == "begin":
        ctx.journal.finish(OUTCOMES["begin"] + " (undone by recover)")
    else:
        tx.step = None
    ctx.write()


# -- rollback ----------------------------------------------------------------------------


def rollback(
    ctx: Ctx, target: str, *, op: Op, close: bool, drop_target: bool = False, end_tdd: bool = False
) -> SavepointRecord:
    """Restore HEAD, branch, index and files to savepoint *target*.

    ``close`` ends the transaction (every savepoint dropped); otherwise the savepoints
    after *target* are dropped (and *target* too with ``drop_target``).
    """
    tx = ctx.tx
    sp = tx.savepoint(target)
    if sp is None:
        raise OperationFailedError(f"transaction {tx.label()} has no savepoint {target!r}")
    names = [s.name for s in tx.savepoints]
    later = names[names.index(target) + 1 :]
    drop = names if close else ([target, *later] if drop_target else later)
    worktree = ctx.repo.layout.require_worktree()
    before = savepoints.read_head(worktree)
    branch_before = None
    if sp.head.ref is not None:
        branch_before = before.commit if before.ref == sp.head.ref else _ref_value(ctx.repo, sp.head.ref)
    tx.step = Step(
        op=op,
        phase="restore",
        owner=ctx.owner,
        started=time.time(),
        target=target,
        before=before,
        branch_before=branch_before,
        drop=drop,
        close=close,
        end_tdd=end_tdd,
    )
    ctx.write()
    finish_restore(ctx, now=before)
    ctx.repo.locks.events.emit("rollback", ctx.repo.attribution, op=op, tx=tx.tx_id, to=target, closed=close)
    for path in snapshots.changed_submodules(worktree):
        console.warn(f"submodule {path} was changed inside the transaction; its files are left as they are")
    return sp


def _ref_value(repo: Repo, ref: str) -> str | None:
    return savepoints.current_values(repo, [ref]).get(ref)


def finish_restore(ctx: Ctx, now: HeadState | None = None) -> None:
    """Restore the journaled savepoint (*now*: HEAD as the live path just read it, under the lock)."""
    tx = ctx.tx
    step = tx.step
    if step is None or step.target is None or step.before is None:
        raise OperationFailedError("the journal's rollback step is incomplete")
    sp = tx.savepoint(step.target)
    if sp is None:
        raise OperationFailedError(f"the journal names savepoint {step.target!r}, which it does not hold")
    savepoints.restore(ctx.repo, sp, before=step.before, branch_before=step.branch_before, now=now)
    step.phase = "drop"
    ctx.write()
    finish_drop(ctx)


# -- commit / drop -----------------------------------------------------------------------


def close(ctx: Ctx, *, op: Op) -> TxRecord:
    """End the transaction keeping its commits; its refs go (or stay ``savepointKeep`` seconds)."""
    tx = ctx.tx
    keep = ctx.repo.settings.savepoint_keep
    tx.step = Step(
        op=op,
        phase="drop",
        owner=ctx.owner,
        started=time.time(),
        drop=[sp.name for sp in tx.savepoints],
        close=True,
        keep_until=time.time() + keep if keep > 0 else None,
    )
    ctx.write()
    finish_drop(ctx)
    ctx.repo.locks.events.emit("tx", ctx.repo.attribution, op=op, tx=tx.tx_id)
    return tx


def drop(ctx: Ctx, names: list[str], *, op: Op, close: bool, end_tdd: bool) -> None:
    """Delete some savepoints' refs without touching HEAD or files (ending a TDD sequence)."""
    ctx.tx.step = Step(
        op=op, phase="drop", owner=ctx.owner, started=time.time(), drop=names, close=close, end_tdd=end_tdd
    )
    ctx.write()
    finish_drop(ctx)


def finish_drop(ctx: Ctx) -> None:
    tx = ctx.tx
    step = tx.step
    if step is None:
        return
    dropped = [sp for sp in tx.savepoints if sp.name in step.drop]
    expected: dict[str, str] = {}
    for sp in dropped:
        expected.update(sp.refs())
    if step.keep_until is not None:
        ctx.journal.kept.append(KeptRefs(tx_id=tx.tx_id, refs=expected, expires=step.keep_until))
    else:
        savepoints.delete_refs(ctx.repo, expected)
    tx.savepoints = [sp for sp in tx.savepoints if sp.name not in step.drop]
    if step.close:
        outcome = OUTCOMES[step.op] + (" (finished by recover)" if ctx.recovering else "")
        ctx.journal.finish(outcome)
    else:
        tx.step = None
        if step.end_tdd:
            tx.tdd = None
    ctx.write()


def expire_kept(ctx: Ctx, now: float | None = None) -> list[str]:
    """Delete kept savepoint refs whose time is up; returns the refs deleted."""
    moment = time.time() if now is None else now
    expired = [kept for kept in ctx.journal.kept if kept.expires <= moment]
    if not expired:
        return []
    deleted: list[str] = []
    for kept in expired:
        moved = savepoints.delete_refs(ctx.repo, kept.refs)
        deleted.extend(name for name in kept.refs if name not in moved)
    ctx.journal.kept = [kept for kept in ctx.journal.kept if kept.expires > moment]
    ctx.write()
    return deleted
