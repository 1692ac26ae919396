"""Ending leases: the one teardown that release, reap and repair share.

Every lease change is ordered so that a SIGKILL at any point leaves a state this
module can finish:

* acquire writes the record as ``provisioning`` before it claims a folder or runs
  ``git worktree add``; a record still ``provisioning`` when the repository lock is
  free again belongs to a dead acquire and is undone (``undo-acquire``);
* ending saves dirty work to a snapshot ref, removes the worktree, drops the record
  and only then deletes the branch. A crash before the removal leaves the lease as
  it was (plus a snapshot ref): retry, or reap. A crash after it leaves a record
  whose folder is gone (``forget-missing``), or, when ``--keep-branch`` was asked and
  therefore written down first as ``releasing``, a record that is finished
  (``finish-release``) honouring that choice. A crash after the record is gone
  leaves at most a branch, which is what a kept branch looks like anyway;
* a record whose folder or git registration is gone is forgotten (``forget-missing``),
  a registration under our lock reason whose folder is gone is removed
  (``unregister``), and one whose folder is there but that no record holds (a
  ``git worktree add`` that outlived its killed parent) is ended like a lease
  (``remove-orphan``).

Dirty work is always snapshotted before a worktree is removed, whichever path got
there. All of it runs under the repository lock (exclusive), which is also what
proves a ``provisioning``/``releasing`` record abandoned: the acquire or release that
wrote it held that lock until it finished.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact import git, gitlocks, leases, refs, replay
from gitxact import worktree_ops as ops
from gitxact.errors import GitxactError
from gitxact.faults import crashpoint
from gitxact.identity import validate_agent
from gitxact.lockqueue import EXCLUSIVE
from gitxact.worktree_docs import EndDoc, ReapDoc

if TYPE_CHECKING:
    from gitxact.leases import Lease
    from gitxact.workspace import Workspace

#: Steps that only put half-done work right (``repair``); ``reap`` also ends dead leases.
REPAIR_ACTIONS = frozenset({"undo-acquire", "finish-release", "forget-missing", "unregister", "remove-orphan"})


@dataclass(frozen=True)
class Step:
    action: str
    reason: str
    path: str
    branch: str
    lease: Lease | None = None


def real(path: str | Path) -> str:
    return os.path.realpath(path)


def registrations(ws: Workspace) -> dict[str, git.WorktreeEntry]:
    """git's worktrees keyed by real path (leases record real paths too)."""
    return {real(path): entry for path, entry in ops.registrations(ws).items()}


def step_for(lease: Lease, entries: dict[str, git.WorktreeEntry], now: float) -> Step | None:
    """What must happen to *lease*, or ``None`` when it is live and whole."""

    def step(action: str, reason: str) -> Step:
        return Step(action, reason, lease.path, lease.branch, lease)

    if lease.phase == "provisioning":
        return step("undo-acquire", "an acquire was interrupted before it finished")
    if lease.phase == "releasing":
        return step("finish-release", "a release was interrupted before it finished")
    if not os.path.isdir(lease.path):
        return step("forget-missing", "its folder is gone")
    if real(lease.path) not in entries:
        return step("forget-missing", "git no longer lists this worktree")
    if lease.owner_dead():
        return step("reap", f"owner pid {lease.owner_pid} on {lease.owner_host} is gone")
    if lease.expired(now):
        return step("reap", f"no heartbeat for {now - lease.heartbeat:.0f}s (ttl {lease.ttl:g}s)")
    return None


def plan(
    ws: Workspace, records: dict[str, Lease], entries: dict[str, git.WorktreeEntry]
) -> tuple[list[Step], dict[str, str]]:
    """Every step reap would take, and why each live lease is kept."""
    now = time.time()
    steps: list[Step] = []
    kept: dict[str, str] = {}
    for agent in sorted(records):
        lease = records[agent]
        found = step_for(lease, entries, now)
        if found is None:
            kept[agent] = (
                f"live: owner pid {lease.owner_pid} on {lease.owner_host}, heartbeat {now - lease.heartbeat:.0f}s ago"
            )
        else:
            steps.append(found)
    known = {real(lease.path) for lease in records.values()}
    first = next(iter(entries), None)  # the main worktree (or the bare repository)
    root = real(ops.worktree_root(ws, entries))
    for path, entry in sorted(entries.items()):
        if path in known or path == first or entry.bare:
            continue
        ours = (entry.locked or "").startswith(ops.LOCK_REASON_PREFIX)
        branch = (entry.branch or "").removeprefix("refs/heads/")
        if not os.path.isdir(path):
            if ours or path.startswith(root + os.sep):
                steps.append(Step("unregister", "its folder is gone and no lease holds it", path, branch))
        elif ours:
            # Made and locked by gitxact, yet no record: a git child that outlived a killed
            # acquire (the record was undone while it still ran). Nobody holds it.
            reason = "gitxact created and locked it but no lease holds it"
            steps.append(Step("remove-orphan", reason, path, branch, _orphan_lease(ws, path, entry)))
    return steps, kept


def end_lease(
    ws: Workspace,
    lease: Lease,
    *,
    action: str,
    reason: str,
    keep_branch: bool = False,
    dirty: bool | None = None,
) -> EndDoc:
    """Save dirty work, remove the worktree, drop the record, delete the branch if merged.

    The caller holds the repository lock exclusive. Each step is safe to redo after
    a crash (see the module docstring for the order). *dirty* passes on what the
    caller just found (``None``: look).
    """
    doc = EndDoc(agent=lease.agent, path=lease.path, branch=lease.branch, action=action, reason=reason)
    undo = lease.phase == "provisioning"
    if not undo and keep_branch and not lease.keep_branch:
        # Only the keep-branch choice needs writing down first: without it, a crash after
        # the removal leaves an active record whose folder is gone, which ``forget-missing``
        # ends exactly as this would (saving one fsync'd write on every plain release).
        lease = lease.model_copy(update={"phase": "releasing", "keep_branch": True})
        ops.save_record(ws, lease)
    crashpoint("worktree-end-marked")
    keep_branch = keep_branch or lease.keep_branch
    path = Path(lease.path)
    registered = ops.is_registered(ws, path)
    if registered and path.is_dir():
        if lease.worktree_id is not None:
            # A git killed with the agent may have left the worktree's index.lock: saving and
            # rolling back need the index. We hold the repository lock exclusive, so the
            # proof of gitlocks.clear_stale_index_lock holds (see there).
            git_dir = ws.layout.common_dir / "worktrees" / lease.worktree_id
            doc.stale_lock_removed = gitlocks.clear_stale_index_lock(git_dir, path)
        open_tx = lease.worktree_id is not None and replay.open_transaction(ws, lease.worktree_id) is not None
        # With a transaction open, save HEAD (its commits) and the files before rolling it back.
        doc.snapshot_ref = ops.save_dirty_work(ws, lease, dirty=True if open_tx else dirty)
        if open_tx and lease.worktree_id is not None:
            doc.transaction = replay.close_for_lease_end(ws, lease.worktree_id)
            before = ops.save_dirty_work(ws, lease)  # the work that was uncommitted when it began
            if before is not None:
                doc.transaction = f"{doc.transaction}; its earlier uncommitted work saved to {before}"
        crashpoint("worktree-end-saved")
    if registered:
        ops.remove_worktree(ws, path)
        doc.worktree_removed = True
    if os.path.lexists(path):
        doc.folder_left = not ops.remove_empty_dir(path)
    crashpoint("worktree-end-removed")
    ops.drop_record(ws, lease)
    crashpoint("worktree-end-dropped")
    _settle_branch(ws, lease, doc, keep_branch=keep_branch, undo=undo)
    return doc


def _settle_branch(ws: Workspace, lease: Lease, doc: EndDoc, *, keep_branch: bool, undo: bool) -> None:
    if keep_branch:
        doc.branch_kept_reason = "kept as asked (--keep-branch)"
        return
    if not ops.owns_branch(ws, lease):
        doc.branch_kept_reason = "not a gitxact branch (it existed before the lease)"
        return
    full = f"refs/heads/{lease.branch}"
    cwd = ws.layout.common_dir
    if undo:
        # An interrupted acquire: a branch it did not create is not its to delete, and a
        # brand-new branch still at its base holds nothing to keep.
        tip = refs.read(cwd, full)
        if not lease.branch_created or tip is None:
            return
        if tip == lease.base_commit:
            try:
                refs.apply(
                    cwd, [refs.RefUpdate(full, None, tip)], message="gitxact: undo acquire", env=ws.locks.child_env()
                )
            except refs.RefConflictError:
                doc.branch_kept_reason = "branch moved while it was being deleted; kept"
                return
            doc.branch_deleted = True
            return
    doc.branch_deleted, doc.branch_kept_reason = ops.delete_branch_if_merged(ws, lease.branch)


def unregister(ws: Workspace, step: Step) -> EndDoc:
    """Drop git's record of a worktree whose folder is gone (locked by us, so ``prune`` won't)."""
    doc = EndDoc(agent="", path=step.path, branch=step.branch, action=step.action, reason=step.reason)
    ops.remove_worktree(ws, Path(step.path))
    doc.worktree_removed = True
    return doc


def run(ws: Workspace, step: Step) -> EndDoc:
    if step.lease is None:
        return unregister(ws, step)
    return end_lease(ws, step.lease, action=step.action, reason=step.reason)


def sweep(ws: Workspace, *, dry_run: bool, actions: frozenset[str] | None) -> ReapDoc:
    """Plan and (unless *dry_run*) take the steps whose action is in *actions* (all if ``None``)."""
    if dry_run:
        records, entries = leases.load(ws), registrations(ws)
        steps, kept = plan(ws, records, entries)
        chosen = [s for s in steps if actions is None or s.action in actions]
        return ReapDoc(
            dry_run=True, ended=[_preview(s) for s in chosen], kept=kept, relocked=unlocked(records, entries)
        )
    ws.store.ensure("locks", "state")
    report = ReapDoc(dry_run=False)
    with ws.locks.repository(EXCLUSIVE):
        steps, report.kept = plan(ws, ops.load_records(ws), registrations(ws))
        for step in steps:
            if actions is not None and step.action not in actions:
                continue
            try:
                report.ended.append(run(ws, step))
            except GitxactError as exc:
                failed = _preview(step)
                failed.error = exc.message
                report.ended.append(failed)
                report.errors += 1
        records = ops.load_records(ws)
        for agent in unlocked(records, registrations(ws)):
            lease = records[agent]
            ops.relock(ws, Path(lease.path), ops.lock_reason(lease.agent, lease.owner_pid, lease.owner_host))
            report.relocked.append(agent)
    return report


def unlocked(records: dict[str, Lease], entries: dict[str, git.WorktreeEntry]) -> list[str]:
    """Active leases whose worktree someone unlocked (``git worktree unlock``): prune could take it."""
    found: list[str] = []
    for agent in sorted(records):
        entry = entries.get(real(records[agent].path))
        if records[agent].phase == "active" and entry is not None and entry.locked is None:
            found.append(agent)
    return found


def _orphan_lease(ws: Workspace, path: str, entry: git.WorktreeEntry) -> Lease:
    """A stand-in record for an orphan, so it is ended like any lease (work saved first)."""
    named = (entry.locked or "").removeprefix(ops.LOCK_REASON_PREFIX).split(" ", 1)[0]
    try:
        agent = validate_agent(named)
    except GitxactError:
        agent = "orphan"
    branch = (entry.branch or "").removeprefix("refs/heads/")
    return leases.Lease(
        agent=agent,
        path=path,
        branch=branch,
        base="",
        token_hash="",
        owner_pid=0,
        owner_host="",
        created=0.0,
        heartbeat=0.0,
        ttl=0.0,
    )


def _preview(step: Step) -> EndDoc:
    agent = step.lease.agent if step.lease is not None else ""
    return EndDoc(agent=agent, path=step.path, branch=step.branch, action=step.action, reason=step.reason)
