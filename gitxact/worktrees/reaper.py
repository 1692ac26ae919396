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

import contextlib
import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError
from gitxact.git import lockfiles, refs, snapshots
from gitxact.git import run as git
from gitxact.leases import records as leases
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.tx import recovery
from gitxact.util.faults import crashpoint
from gitxact.util.names import validate_agent
from gitxact.worktrees import branches, ownership, paths, registration
from gitxact.worktrees.results import EndDoc, ReapDoc

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease

#: Steps that only put half-done work right (``repair``); ``reap`` also ends dead leases.
REPAIR_ACTIONS = frozenset(
    {
        "undo-acquire",
        "finish-release",
        "forget-missing",
        "unregister",
        "remove-orphan",
        "drop-foreign",
        "undo-half-made",
    }
)


@dataclass(frozen=True)
class Step:
    action: str
    reason: str
    path: str
    branch: str
    lease: Lease | None = None


def real(path: str | Path) -> str:
    return os.path.realpath(path)


def registrations(repo: Repo) -> dict[str, git.WorktreeEntry]:
    """git's worktrees keyed by real path (leases record real paths too)."""
    return {real(path): entry for path, entry in registration.registrations(repo).items()}


def step_for(repo: Repo, lease: Lease, entries: dict[str, git.WorktreeEntry], now: float) -> Step | None:
    """What must happen to *lease*, or ``None`` when it is live and whole."""

    def step(action: str, reason: str) -> Step:
        return Step(action, reason, lease.path, lease.branch, lease)

    foreign = ownership.why_not_ours(repo, lease)
    if foreign is not None:
        return step("drop-foreign", f"the record cannot be gitxact's: {foreign}; only the record is dropped")
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
    repo: Repo, records: dict[str, Lease], entries: dict[str, git.WorktreeEntry]
) -> tuple[list[Step], dict[str, str]]:
    """Every step reap would take, and why each live lease is kept."""
    now = time.time()
    steps: list[Step] = []
    kept: dict[str, str] = {}
    for agent in sorted(records):
        lease = records[agent]
        found = step_for(repo, lease, entries, now)
        if found is None:
            kept[agent] = (
                f"live: owner pid {lease.owner_pid} on {lease.owner_host}, heartbeat {now - lease.heartbeat:.0f}s ago"
            )
        else:
            steps.append(found)
    known = {real(lease.path) for lease in records.values()}
    first = next(iter(entries), None)  # the main worktree (or the bare repository)
    root = real(paths.worktree_root(repo, entries))
    for path, entry in sorted(entries.items()):
        if path in known or path == first or entry.bare:
            continue
        # Only registrations gitxact made (its lock reason) under its root; others are git's
        # or a person's to prune.
        ours = (entry.locked or "").startswith(registration.LOCK_REASON_PREFIX) and path.startswith(root + os.sep)
        branch = (entry.branch or "").removeprefix("refs/heads/")
        if not os.path.isdir(path):
            if ours:
                steps.append(Step("unregister", "its folder is gone and no lease holds it", path, branch))
        elif ours:
            # Made and locked by gitxact, yet no record: a git child that outlived a killed
            # acquire (the record was undone while it still ran). Nobody holds it.
            reason = "gitxact created and locked it but no lease holds it"
            steps.append(Step("remove-orphan", reason, path, branch, _orphan_lease(repo, path, entry)))
    # Admin folders git never finished (a kill inside `git worktree add`) that no step
    # above ends: git does not even list those without a `gitdir`.
    covered = {real(step.path) for step in steps} | known
    for admin in registration.admin_dirs(repo):
        if not (registration.locked_by_gitxact(admin) and registration.half_made(admin)):
            continue
        folder = registration.folder_of(admin)
        if folder is not None and real(folder) in covered:
            continue
        reason = "a `git worktree add` was killed before it finished (no lease holds it)"
        steps.append(Step("undo-half-made", reason, str(admin), ""))
    return steps, kept


def end_lease(
    repo: Repo,
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
    path = Path(lease.path)
    registered = registration.is_registered(repo, path)
    foreign = ownership.why_not_ours(repo, lease)
    if foreign is not None:
        # Whatever the record says, nothing on disk is touched: not the folder, not the
        # worktree, not the branch. Only the record (gitxact's own file) goes.
        leases.drop_record(repo, lease)
        doc.branch_kept_reason = f"not gitxact's ({foreign}); only the lease record was dropped"
        return doc
    if not undo and keep_branch and not lease.keep_branch:
        # Only the keep-branch choice needs writing down first: without it, a crash after
        # the removal leaves an active record whose folder is gone, which ``forget-missing``
        # ends exactly as this would (saving one fsync'd write on every plain release).
        lease = lease.model_copy(update={"phase": "releasing", "keep_branch": True})
        leases.save_record(repo, lease)
    crashpoint("worktree-end-marked")
    keep_branch = keep_branch or lease.keep_branch
    # The worktree's own lock: no git command (gx's, a transaction's) works in it while
    # it is saved and removed. The repository lock held exclusive keeps out the rest.
    with _worktree_held(repo, lease):
        admin = registration.admin_dir_of(path) if registered else None
        if admin is not None and registration.half_made(admin):
            # git never finished this worktree: nothing in it can be saved (its HEAD is not
            # even set) and every git command in it fails. Its record and folder go by hand.
            doc.reason += "; " + registration.discard_half_made(repo, admin, paths.worktree_root(repo))
            doc.worktree_removed = True
            registered = False
        if registered and path.is_dir():
            if lease.worktree_id is not None:
                # A git killed with the agent may have left the worktree's index.lock: saving and
                # rolling back need the index. The worktree is gitxact's (proven above), its
                # owner is gone and we hold the repository lock exclusive.
                git_dir = repo.layout.common_dir / "worktrees" / lease.worktree_id
                if lockfiles.remove_orphaned_index_lock(git_dir, path):
                    doc.stale_lock_removed = f"removed {git_dir / 'index.lock'}: a killed git left it"
            open_tx = lease.worktree_id is not None and recovery.open_transaction(repo, lease.worktree_id) is not None
            # With a transaction open, save HEAD (its commits) and the files before rolling it back.
            doc.snapshot_ref = save_dirty_work(repo, lease, dirty=True if open_tx else dirty)
            if open_tx and lease.worktree_id is not None:
                doc.transaction = recovery.close_for_lease_end(repo, lease.worktree_id)
                before = save_dirty_work(repo, lease)  # the work that was uncommitted when it began
                if before is not None:
                    doc.transaction = f"{doc.transaction}; its earlier uncommitted work saved to {before}"
            crashpoint("worktree-end-saved")
        if registered:
            registration.remove_worktree(repo, path)
            doc.worktree_removed = True
        if os.path.lexists(path):
            doc.folder_left = not paths.remove_empty_dir(path)
    crashpoint("worktree-end-removed")
    leases.drop_record(repo, lease)
    crashpoint("worktree-end-dropped")
    _settle_branch(repo, lease, doc, keep_branch=keep_branch, undo=undo)
    return doc


def _worktree_held(repo: Repo, lease: Lease) -> contextlib.AbstractContextManager[object]:
    if lease.worktree_id is None:
        return contextlib.nullcontext()
    return repo.locks.worktree(lease.worktree_id)


def _settle_branch(repo: Repo, lease: Lease, doc: EndDoc, *, keep_branch: bool, undo: bool) -> None:
    if keep_branch:
        doc.branch_kept_reason = "kept as asked (--keep-branch)"
        return
    if not ownership.owns_branch(repo, lease.branch):
        doc.branch_kept_reason = f"not under gitxact's branch prefix {repo.settings.branch_prefix!r}"
        return
    if not branches.owns_branch(repo, lease):
        doc.branch_kept_reason = "not a gitxact branch (it existed before the lease)"
        return
    full = f"refs/heads/{lease.branch}"
    cwd = repo.layout.common_dir
    if undo:
        # An interrupted acquire: a branch it did not create is not its to delete, and a
        # brand-new branch still at its base holds nothing to keep.
        tip = refs.read(cwd, full)
        if not lease.branch_created or tip is None:
            return
        if tip == lease.base_commit:
            try:
                refs.apply(
                    cwd, [refs.RefUpdate(full, None, tip)], message="gitxact: undo acquire", env=repo.locks.child_env()
                )
            except refs.RefConflictError:
                doc.branch_kept_reason = "branch moved while it was being deleted; kept"
                return
            doc.branch_deleted = True
            return
    doc.branch_deleted, doc.branch_kept_reason = branches.delete_branch_if_merged(repo, lease.branch)


def unregister(repo: Repo, step: Step) -> EndDoc:
    """Drop git's record of a worktree whose folder is gone (locked by us, so ``prune`` won't)."""
    doc = EndDoc(agent="", path=step.path, branch=step.branch, action=step.action, reason=step.reason)
    registration.remove_worktree(repo, Path(step.path))
    doc.worktree_removed = True
    return doc


def run(repo: Repo, step: Step) -> EndDoc:
    if step.action == "undo-half-made":
        doc = EndDoc(agent="", path=step.path, branch="", action=step.action, reason=step.reason)
        doc.reason += "; " + registration.discard_half_made(repo, Path(step.path), paths.worktree_root(repo))
        doc.worktree_removed = True
        return doc
    if step.lease is None:
        return unregister(repo, step)
    return end_lease(repo, step.lease, action=step.action, reason=step.reason)


def sweep(repo: Repo, *, dry_run: bool, actions: frozenset[str] | None) -> ReapDoc:
    """Plan and (unless *dry_run*) take the steps whose action is in *actions* (all if ``None``)."""
    if dry_run:
        records, entries = leases.load(repo), registrations(repo)
        steps, kept = plan(repo, records, entries)
        chosen = [s for s in steps if actions is None or s.action in actions]
        return ReapDoc(
            dry_run=True, ended=[_preview(s) for s in chosen], kept=kept, relocked=unlocked(repo, records, entries)
        )
    repo.store.ensure("locks", "state")
    report = ReapDoc(dry_run=False)
    with repo.locks.repository(EXCLUSIVE):
        steps, report.kept = plan(repo, leases.load_records(repo), registrations(repo))
        for step in steps:
            if actions is not None and step.action not in actions:
                continue
            try:
                report.ended.append(run(repo, step))
            except GitxactError as exc:
                failed = _preview(step)
                failed.error = exc.message
                report.ended.append(failed)
                report.errors += 1
            repo.locks.events.emit("reap", repo.agent, lease=report.ended[-1].agent, action=step.action)
        records = leases.load_records(repo)
        for agent in unlocked(repo, records, registrations(repo)):
            lease = records[agent]
            registration.relock(
                repo, Path(lease.path), registration.lock_reason(lease.agent, lease.owner_pid, lease.owner_host)
            )
            report.relocked.append(agent)
    return report


def unlocked(repo: Repo, records: dict[str, Lease], entries: dict[str, git.WorktreeEntry]) -> list[str]:
    """Active leases whose worktree someone unlocked (``git worktree unlock``): prune could take it.

    Only worktrees gitxact made are locked again: a record naming someone else's is dropped instead.
    """
    found: list[str] = []
    for agent in sorted(records):
        lease = records[agent]
        entry = entries.get(real(lease.path))
        unlocked_here = lease.phase == "active" and entry is not None and entry.locked is None
        if unlocked_here and ownership.why_not_ours(repo, lease) is None:
            found.append(agent)
    return found


def _orphan_lease(repo: Repo, path: str, entry: git.WorktreeEntry) -> Lease:
    """A stand-in record for an orphan, so it is ended like any lease (work saved first)."""
    named = (entry.locked or "").removeprefix(registration.LOCK_REASON_PREFIX).split(" ", 1)[0]
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


def save_dirty_work(repo: Repo, lease: Lease, *, dirty: bool | None = None) -> str | None:
    """Snapshot uncommitted and untracked work to ``refs/gitxact/snapshots/<agent>/<time>``.

    Returns the ref, or ``None`` when the worktree was clean (*dirty* passes on what
    the caller just found, under the same repository lock). The ref keeps the
    objects alive through ``gc``; ``gitxact`` never deletes it.
    """
    path = Path(lease.path)
    if not (snapshots.has_changes(path) if dirty is None else dirty):
        return None
    stamp = datetime.datetime.now(tz=datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return snapshots.save(
        repo.layout.common_dir,
        path,
        f"{lease.agent}/{stamp}",
        f"uncommitted work of {lease.agent}",
        repo.locks.child_env(),
    )
