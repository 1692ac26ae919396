"""The journaled parts of a TDD step: prepare the commit, check the CAS, commit, discard.

Split from :mod:`gitxact.tx.tdd` because ``gitxact recover`` replays exactly these
(:mod:`gitxact.tx.recovery`): finishing a journaled commit, creating the passing
savepoint after it, or discarding a check that never gave a verdict.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

from gitxact.errors import OperationFailedError, UsageError
from gitxact.tx import checks, journaled, savepoints, staging
from gitxact.tx.journal import HeadState, Step, TxRecord

if TYPE_CHECKING:
    from gitxact.tx.journaled import Ctx

StepName = Literal["red", "green", "refactor"]
_TITLES = {"red": "TDD RED", "green": "TDD GREEN", "refactor": "TDD REFACTOR"}


def message_for(op: StepName, paths: list[str], spec: checks.CheckSpec, custom: str | None) -> str:
    if custom is not None:
        if not custom.strip():
            raise UsageError("the commit message is empty")
        return custom if custom.endswith("\n") else custom + "\n"
    verdict = "fails, as a new test must" if op == "red" else "passes"
    return f"{_TITLES[op]}: {', '.join(paths)}\n\nCheck ({verdict}): {spec.display}\n"


def prepare(ctx: Ctx, op: StepName, paths: list[str]) -> tuple[HeadState, str, str]:
    """HEAD, the index tree and the tree to commit; refuses a commit that changes nothing."""
    before = savepoints.read_head(ctx.repo.layout.require_worktree())
    tree = staging.tree_with_paths(ctx.repo, before.commit, paths)
    if tree == staging.head_tree(ctx.repo, before.commit):
        raise OperationFailedError(f"nothing to commit: {', '.join(paths)} are unchanged since HEAD")
    return before, staging.index_tree(ctx.repo), tree


def check_step(
    ctx: Ctx, op: StepName, paths: list[str], spec: checks.CheckSpec, prep: tuple[HeadState, str, str]
) -> Step:
    before, index, tree = prep
    return Step(
        op=op,
        phase="check",
        owner=ctx.owner,
        started=time.time(),
        before=before,
        index_tree=index,
        tree=tree,
        paths=paths,
        check=spec.display,
    )


def reclaim(ctx: Ctx, step: Step) -> TxRecord:
    tx = ctx.journal.tx
    if tx is None or tx.step is None or tx.step.started != step.started or not tx.step.owner.is_me():
        raise OperationFailedError("the journal changed while the check ran; nothing was committed")
    return tx


def changed_during_check(ctx: Ctx, step: Step) -> str | None:
    now = savepoints.read_head(ctx.repo.layout.require_worktree())
    if step.before is None or now != step.before:
        return "HEAD moved"
    if staging.index_tree(ctx.repo) != step.index_tree:
        return "the index changed"
    if staging.tree_with_paths(ctx.repo, now.commit, step.paths) != step.tree:
        return f"{', '.join(step.paths)} changed"
    return None


def clear_check(ctx: Ctx, op: str) -> None:
    """A check step ends with no commit: a sequence that has none yet is discarded."""
    tx = ctx.tx
    tdd = tx.tdd
    if tdd is not None and tdd.step == "started":
        names = [sp.name for sp in tx.savepoints] if tdd.owns_tx else [tdd.start]
        journaled.drop(ctx, names, op="red" if op == "red" else "abort", close=tdd.owns_tx, end_tdd=True)
        return
    tx.step = None
    ctx.write()


def finish_commit(ctx: Ctx) -> None:
    """Move HEAD to the journaled commit, then the index entries of the paths (also recover's job)."""
    tx = ctx.tx
    step = tx.step
    if step is None or step.commit is None or step.before is None or tx.tdd is None:
        raise OperationFailedError("the journal's tdd commit step is incomplete")
    target = HeadState(commit=step.commit, ref=step.before.ref)
    savepoints.move_head(
        ctx.repo, target, before=step.before, branch_before=step.before.commit, message=f"gitxact: tdd {step.op}"
    )
    staging.reset_paths(ctx.repo, step.paths)
    tdd = tx.tdd
    tdd.commits.append(step.commit)
    tdd.step = "red" if step.op == "red" else "green" if step.op == "green" else "refactor"
    if step.op == "red":
        tx.step = None
        ctx.write()
        return
    if step.op == "refactor":
        tdd.refactors += 1
    name = "tdd-green" if step.op == "green" else f"tdd-refactor-{tdd.refactors}"
    sp = savepoints.capture(ctx.repo, tx.namespace, tx.tx_id, name)
    tx.step = Step(op=step.op, phase="refs", owner=ctx.owner, started=time.time(), savepoint=sp)
    ctx.write()
    finish_passing_savepoint(ctx)


def finish_passing_savepoint(ctx: Ctx) -> None:
    """The savepoint after a green/refactor commit: what a failed refactor returns to."""
    tx = ctx.tx
    step = tx.step
    if step is None or step.savepoint is None or tx.tdd is None:
        raise OperationFailedError("the journal's savepoint step is incomplete")
    sp = step.savepoint
    savepoints.create_refs(ctx.repo, sp.refs())
    if tx.savepoint(sp.name) is None:
        tx.savepoints.append(sp)
    tx.tdd.passing = sp.name
    tx.step = None
    ctx.write()
