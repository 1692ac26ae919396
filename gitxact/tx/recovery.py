"""The decision table ``gitxact recover`` applies to each worktree's journal.

A transaction needs recovery when the process in one of its steps died (or gave up
on it), or when the library process holding it open in a ``with`` block died. Each
case has exactly one action, chosen only from what the journal recorded, so
recovery is deterministic and running it twice changes nothing the second time:

====================================  ==========================================================
journal: step (op / phase)            recover does
====================================  ==========================================================
begin / refs                          undo: delete the start refs created so far; no transaction
savepoint / refs                      undo: delete that savepoint's refs; transaction stays open
green, refactor / refs                finish: create the passing savepoint's refs
red, green, refactor / check          nothing changed yet: drop the step; a sequence with no
                                      commit yet (red) is discarded with its savepoint refs
red, green, refactor / commit         finish: move HEAD/branch to the journaled commit
                                      (compare-and-swap from the recorded old value), then the
                                      index entries of the paths
any / restore                         finish the rollback: HEAD/branch to the savepoint (CAS),
                                      index and files to its snapshot, then drop later savepoints
any / drop                            finish: delete (or keep, ``savepointKeep``) the refs, close
no step, holder process dead          the ``with`` block never ended: roll back to start, close
no step, no holder (CLI) or alive     nothing: an open transaction waiting for its next command
step whose owner is alive             nothing: it is running (``busy``)
====================================  ==========================================================

Compare-and-swap keeps recovery from overwriting someone else's work: if the branch
is neither where the step found it nor where the step was taking it, the step is
left in the journal and reported as a problem (exit 1), for a person to decide.
"""

from __future__ import annotations

from pathlib import Path

from gitxact.core.repo import Repo
from gitxact.errors import GitxactError, NotARepositoryError, OperationFailedError
from gitxact.tx import journaled, tdd_journaled
from gitxact.tx.journal import JournalFile, Owner, TxRecord, all_journals, condition
from gitxact.tx.journaled import Ctx


def action_for(tx: TxRecord) -> str:
    """The row of the decision table for an abandoned transaction."""
    step = tx.step
    if step is None:
        return "roll back to start (holder died)"
    if step.phase == "refs":
        return "undo savepoint" if step.op in ("begin", "savepoint") else "finish savepoint"
    return {
        "check": "drop interrupted check",
        "commit": "finish tdd commit",
        "restore": "finish rollback",
        "drop": "finish drop",
    }[step.phase]


def _apply(ctx: Ctx, action: str) -> None:
    tx = ctx.tx
    step = tx.step
    if action == "roll back to start (holder died)":
        journaled.rollback(ctx, "start", op="rollback", close=True)
    elif action == "undo savepoint":
        journaled.undo_refs(ctx)
    elif action == "finish savepoint":
        tdd_journaled.finish_passing_savepoint(ctx)
    elif action == "drop interrupted check" and step is not None:
        tdd_journaled.clear_check(ctx, step.op)
    elif action == "finish tdd commit":
        tdd_journaled.finish_commit(ctx)
    elif action == "finish rollback":
        journaled.finish_restore(ctx)
    elif action == "finish drop":
        journaled.finish_drop(ctx)


def replay_worktree(repo: Repo, worktree_id: str) -> tuple[list[str], list[str]]:
    """Apply the decision table to one worktree's journal; returns (actions, problems)."""
    actions: list[str] = []
    problems: list[str] = []
    with repo.locks.worktree(worktree_id):
        jf = JournalFile(repo, worktree_id)
        journal = jf.load()
        # One pass repairs everything: finishing a step can leave a transaction whose
        # holder is dead too (a library `with` block that died in a check), which then
        # needs its own row of the table. Each action ends or shrinks the step, so this stops.
        for _ in range(4):
            tx = journal.tx
            if tx is None:
                break
            state = condition(tx)
            if state == "busy" and tx.step is not None:
                actions.append(
                    f"{worktree_id}: left {tx.label()} alone: {tx.step.owner.describe()} is in `{tx.step.op}`"
                )
                break
            if state == "open":
                break
            action = action_for(tx)
            try:
                local = _repo_of(repo, tx)
                ctx = Ctx(local, jf, journal, Owner.current(repo.agent, "recover"), recovering=True)
                _apply(ctx, action)
            except GitxactError as exc:
                problems.append(f"{worktree_id}: could not {action} for {tx.label()}: {exc.message}")
                break
            now = "still open" if journal.tx is not None else "closed"
            actions.append(f"{worktree_id}: {action} for {tx.label()} (transaction {now})")
    return actions, problems


def open_transaction(repo: Repo, worktree_id: str) -> TxRecord | None:
    """The transaction open in a worktree, read without a lock (for a decision made under one)."""
    return JournalFile(repo, worktree_id).peek().tx


def close_for_lease_end(repo: Repo, worktree_id: str) -> str | None:
    """A lease that ends takes its worktree's open transaction with it: rolled back to start.

    All or nothing: the branch goes back to where the transaction began. The caller
    saves the worktree (HEAD with the transaction's commits, and its files) to a
    snapshot ref first, so nothing that was there is lost. Otherwise the next lease of
    that worktree id would find a transaction nobody can finish. Returns what was done.
    """
    actions, problems = replay_worktree(repo, worktree_id)  # finish an abandoned step first
    if problems:
        raise OperationFailedError("; ".join(problems))
    with repo.locks.worktree(worktree_id):
        jf = JournalFile(repo, worktree_id)
        journal = jf.load()
        tx = journal.tx
        if tx is None:
            return "; ".join(actions) or None
        if condition(tx) == "busy" and tx.step is not None:
            raise OperationFailedError(f"{tx.label()} is busy: {tx.step.owner.describe()} is in `{tx.step.op}`")
        ctx = Ctx(_repo_of(repo, tx), jf, journal, Owner.current(repo.agent, "end lease"), recovering=True)
        journaled.rollback(ctx, "start", op="rollback", close=True)
        return f"rolled back {tx.label()} to its start (the lease ended)"


def _repo_of(repo: Repo, tx: TxRecord) -> Repo:
    """A Repo rooted in the transaction's own worktree (recover may run from another)."""
    path = Path(tx.worktree)
    if not path.is_dir():
        raise NotARepositoryError(
            f"its worktree {path} no longer exists; the refs under refs/gitxact/*/{tx.namespace}/{tx.tx_id} are kept"
        )
    local = Repo(path, agent=repo.agent, timeout=repo.locks.default_timeout)
    if local.layout.worktree_id != tx.worktree_id or local.layout.common_dir != repo.layout.common_dir:
        raise NotARepositoryError(f"{path} is no longer worktree {tx.worktree_id!r} of this repository")
    return local


def expire_kept_savepoints(repo: Repo) -> list[tuple[str, list[str]]]:
    """Delete kept savepoint refs whose time is up; ``(worktree id, refs deleted)`` per worktree."""
    done: list[tuple[str, list[str]]] = []
    for worktree_id, journal in all_journals(repo).items():
        if not journal.kept:
            continue
        with repo.locks.worktree(worktree_id):
            jf = JournalFile(repo, worktree_id)
            ctx = Ctx(repo, jf, jf.load(), Owner.current(repo.agent, "recover"), recovering=True)
            done.append((worktree_id, journaled.expire_kept(ctx)))
    return done
