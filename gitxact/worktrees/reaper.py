"""Ending leases: the one teardown that release, reap and repair share.

Every lease change is ordered so that a SIGKILL at any point leaves a state this
module can finish:

* acquire writes the record as ``provisioning`` before it claims a folder, then, under
  the repository lock, registers the worktree on its branch, locked, with no file
  checked out (``git worktree add --no-checkout --lock``), marks it, and takes the new
  worktree's lock; only then does it let the repository lock go and check the files
  out, holding that worktree lock alone, and write ``active`` last. A record still
  ``provisioning`` whose acquire is gone is undone (``undo-acquire``); a checkout it
  never finished is told by the missing index, and the files it wrote are git's own
  (a file that is not is saved first);
* release needs only the worktree's lock to save dirty work to a snapshot ref, write
  ``removing`` and delete the files (all but the ``.git`` file); then, under the
  repository lock, git removes the registration, the record is dropped and only then
  is the branch deleted. A crash before ``removing`` leaves the lease as it was (plus a
  snapshot ref): retry, or reap. A ``removing`` record whose release is gone is
  finished (``finish-release``); its work was saved before any file went, so what is
  still there is saved again first only when the agent's newest snapshot does not hold
  it as it is (a forged ``removing`` record names work nobody saved). ``--keep-branch``
  is written down first, as ``releasing``, so a release finished after a crash honours
  it. A crash after the record is gone leaves at most a branch, which is what a kept
  branch looks like anyway;
* a record whose folder or git registration is gone is forgotten (``forget-missing``),
  a registration under our lock reason whose folder is gone is removed
  (``unregister``), and one whose folder is there but that no record holds (a
  ``git worktree add`` that outlived its killed parent) is ended like a lease
  (``remove-orphan``).

Which unfinished record is abandoned: the repository lock proves it for a
``provisioning`` record with no worktree yet (its acquire held that lock until the
worktree existed and its lock was taken); otherwise the worktree's own lock does,
since the acquire or release working on it holds that lock throughout. A record whose
worktree lock is held, or in which a git that a killed acquire started still runs, is
in progress and left alone (kept; ``gitxact worktree list`` shows its phase).

Dirty work is always snapshotted before a worktree is removed, whichever path got
there. Reap and repair run under the repository lock (exclusive), and take each
worktree's lock to end it.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError, LockTimeoutError, RefusedError
from gitxact.git import lockfiles, refs, snapshots
from gitxact.git import run as git
from gitxact.leases import records as leases
from gitxact.locking.locks import worktree_key
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.tx import recovery
from gitxact.util.faults import crashpoint
from gitxact.util.names import validate_agent
from gitxact.worktrees import branches, fleet, ownership, paths, registration, trash
from gitxact.worktrees.results import EndDoc, ReapDoc
from gitxact.worktrees.trace import trace

if TYPE_CHECKING:
    from gitxact.backends.pg_registry import AgentRegistry
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


#: The "step" of an unfinished lease whose acquire or release is still running: nothing to do.
BUSY = "busy"


real = paths.real
real_paths = paths.real_paths


def registrations(repo: Repo) -> dict[str, git.WorktreeEntry]:
    """git's worktrees keyed by real path (leases record real paths too)."""
    return paths.registrations_by_real_path(repo)


def worktree_id(repo: Repo, lease: Lease) -> str | None:
    """The id of *lease*'s worktree: recorded once the lease is active; before that (an
    acquire still checking out, or killed), read from the folder's ``.git`` file, if it
    names an admin folder of this repository."""
    if lease.worktree_id is not None:
        return lease.worktree_id
    admin = registration.admin_dir_of(Path(lease.path))
    if admin is None or real(admin.parent) != real(repo.layout.common_dir / "worktrees"):
        return None
    return admin.name


def in_progress(repo: Repo, lease: Lease) -> str | None:
    """Why an unfinished record (``provisioning``, ``releasing``, ``removing``) is still being
    worked on, or ``None`` when whoever wrote it is gone.

    The acquire or release working on a worktree holds its lock throughout; a worktree
    whose lock is free has nobody working on it, unless a git that a killed acquire
    started (its checkout) still runs there. A record with no worktree yet belongs to an
    acquire that held the repository lock, which the caller now holds (a dry run may
    catch a live acquire there: it only reports).
    """
    wid = worktree_id(repo, lease)
    if wid is None:
        return None
    admin = registration.admin_dir_of(Path(lease.path))
    if admin is not None and registration.half_made(admin):
        return None  # git never finished adding it: no lock was taken, no checkout began
    key = worktree_key(wid)
    try:
        with repo.locks.hold(key, EXCLUSIVE, 0):
            # Free now: read the record again, under that lock. The one the caller read may
            # be from before the acquire or release finished and let the lock go.
            now = leases.current(repo, lease)
    except LockTimeoutError:
        holders = [p.describe() for p in repo.locks.parties(key) if p.holding]
        who = "; ".join(holders) if holders else "another process"
        return f"its {'acquire' if lease.phase == 'provisioning' else 'release'} is running ({who})"
    if now is None or now.phase != lease.phase:
        return f"it changed meanwhile (now {now.phase if now else 'ended'})"
    if lease.phase == "provisioning" and admin is not None:
        busy = registration.git_at_work(repo, Path(lease.path), admin)
        if busy is not None:
            return f"a git its acquire started still works there ({busy})"
    return None


def step_for(repo: Repo, lease: Lease, entries: dict[str, git.WorktreeEntry], now: float) -> Step | None:
    """What must happen to *lease*, or ``None`` when it is live and whole."""

    def step(action: str, reason: str) -> Step:
        return Step(action, reason, lease.path, lease.branch, lease)

    foreign = ownership.why_not_ours(repo, lease)
    if foreign is not None:
        return step("drop-foreign", f"the record cannot be gitxact's: {foreign}; only the record is dropped")
    if lease.phase != "active":
        busy = in_progress(repo, lease)
        if busy is not None:
            return step(BUSY, busy)
    if lease.phase == "provisioning":
        return step("undo-acquire", "an acquire was interrupted before it finished")
    if lease.phase in ("releasing", "removing"):
        return step("finish-release", "a release was interrupted before it finished")
    if not os.path.isdir(lease.path):
        return step("forget-missing", "its folder is gone")
    if real(lease.path) not in entries:
        return step("forget-missing", "git no longer lists this worktree")
    if lease.owner_dead():
        return step("reap", f"owner pid {lease.owner_pid} on {lease.owner_host} is gone")
    if not lease.is_live(now):  # past its TTL, and its owner cannot be proven alive from here
        return step("reap", f"no heartbeat for {now - lease.heartbeat:.0f}s (ttl {lease.ttl:g}s); {_unproven(lease)}")
    return None


def _unproven(lease: Lease) -> str:
    if not lease.owner.on_this_host:
        return f"its owner pid {lease.owner_pid} runs on {lease.owner_host}, which cannot be checked from here"
    return f"its owner pid {lease.owner_pid} cannot be proven alive (its start time is unknown)"


def kept_reason(lease: Lease, now: float) -> str:
    """Why reap keeps a live lease: its owner runs (a stale heartbeat is only a warning), or
    it cannot be checked from here and its TTL has not passed."""
    beat = f"heartbeat {now - lease.heartbeat:.0f}s ago"
    if lease.owner_alive():
        stale = f" (past its ttl {lease.ttl:g}s: kept, its owner runs)" if lease.expired(now) else ""
        return f"live: owner pid {lease.owner_pid} on {lease.owner_host} is alive, {beat}{stale}"
    return f"live: owner pid {lease.owner_pid} on {lease.owner_host} not checkable here, {beat}, within its ttl"


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
            kept[agent] = kept_reason(lease, now)
        elif found.action == BUSY:
            kept[agent] = f"{lease.phase}: {found.reason}"
        else:
            steps.append(found)
    known = set(real_paths([lease.path for lease in records.values()]))
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
    orphan: bool = False,
) -> EndDoc:
    """Save dirty work, remove the worktree, drop the record, delete the branch if merged.

    The caller holds the repository lock exclusive; the worktree's own lock is taken
    here, and the record read again under it: whoever ended or changed the lease while
    this waited (a release emptying it) decides what is left to do. Each step is safe to
    redo after a crash (see the module docstring for the order). *dirty* passes on what
    the caller just found (``None``: look). *orphan*: *lease* is the stand-in for a
    registration of gitxact's that no record holds, not a record.
    """
    doc = EndDoc(agent=lease.agent, path=lease.path, branch=lease.branch, action=action, reason=reason)
    path = Path(lease.path)
    foreign = ownership.why_not_ours(repo, lease, orphan=orphan)
    if foreign is not None:
        # Whatever the record says, nothing on disk is touched: not the folder, not the
        # worktree, not the branch. Only the record (gitxact's own file) goes.
        leases.drop_record(repo, lease)
        doc.branch_kept_reason = f"not gitxact's ({foreign}); only the lease record was dropped"
        return doc
    # The worktree's own lock: no git command (gx's, a transaction's) works in it while
    # it is saved and removed. The repository lock held exclusive keeps out the rest.
    with _worktree_held(repo, lease):
        if not orphan:  # a record: as it is now
            now = leases.current(repo, lease)
            if now is None:
                doc.reason += "; it had ended meanwhile"
                return doc
            if lease.phase == "provisioning" and now.phase != "provisioning":
                doc.reason += f"; its acquire finished meanwhile ({now.phase}): left alone"
                return doc
            lease = now
        undo = lease.phase == "provisioning"
        if not undo and keep_branch and not lease.keep_branch and lease.phase != "removing":
            # Only the keep-branch choice needs writing down first: without it, a crash after
            # the removal leaves an active record whose folder is gone, which ``forget-missing``
            # ends exactly as this would (saving one fsync'd write on every plain release).
            lease = lease.model_copy(update={"phase": "releasing", "keep_branch": True})
            leases.save_record(repo, lease)
        crashpoint("worktree-end-marked")
        keep_branch = keep_branch or lease.keep_branch
        registered = registration.is_registered(repo, path)
        admin = registration.admin_dir_of(path) if registered else None
        if admin is not None and registration.half_made(admin):
            # git never finished this worktree: nothing in it can be saved (its HEAD is not
            # even set) and every git command in it fails. Its record and folder go by hand.
            doc.reason += "; " + registration.discard_half_made(repo, admin, paths.worktree_root(repo))
            doc.worktree_removed = True
            registered = False
        if registered and path.is_dir():
            if lease.phase == "removing":
                # The release saved the work before it deleted any file, says the record; but a
                # record is only a file (forged, in a shared repository, by any group member).
                # No file goes unless a snapshot holds it: what is left is saved again otherwise.
                dirty = _work_unsaved(repo, lease, admin)
            save_work(repo, lease, doc, dirty=dirty, admin=admin)
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


def _work_unsaved(repo: Repo, lease: Lease, admin: Path | None) -> bool:
    """Whether a ``removing`` worktree holds work that no snapshot of its agent holds.

    A release interrupted while deleting leaves only deletions and files its snapshot
    (the agent's newest) holds as they are: nothing to save again. Anything else (a
    forged ``removing`` record naming a worktree nobody released) is saved first.
    """
    path = Path(lease.path)
    if not snapshots.has_work_left(path):
        return False
    saved = refs.list_refs(repo.layout.common_dir, f"{snapshots.SNAPSHOT_PREFIX}{lease.agent}/")
    if not saved or admin is None:
        return True
    newest = saved[max(saved)]
    return not snapshots.holds_worktree(path, admin, newest, repo.locks.child_env())


def save_work(repo: Repo, lease: Lease, doc: EndDoc, *, dirty: bool | None, admin: Path | None) -> None:
    """Before a worktree is removed: its uncommitted work to a snapshot ref, and an open
    transaction rolled back (the worktree saved first). The caller holds its lock."""
    path = Path(lease.path)
    wid = worktree_id(repo, lease)
    if wid is not None:
        # A git killed with the agent (or with an acquire) may have left the worktree's
        # index.lock: saving and rolling back need the index. The worktree is gitxact's
        # (proven by the caller), its owner is gone and we hold its lock.
        git_dir = repo.layout.common_dir / "worktrees" / wid
        if lockfiles.remove_orphaned_index_lock(git_dir, path):
            doc.stale_lock_removed = f"removed {git_dir / 'index.lock'}: a killed git left it"
    if lease.phase == "provisioning" and admin is not None and not registration.checkout_finished(admin):
        # An acquire killed before its checkout finished: the files there are git's, but
        # for one that is not (saved, like any work).
        dirty = registration.leftover_work(repo, path)
    open_tx = wid is not None and recovery.open_transaction(repo, wid) is not None
    # With a transaction open, save HEAD (its commits) and the files before rolling it back.
    doc.snapshot_ref = save_dirty_work(repo, lease, dirty=True if open_tx else dirty)
    if open_tx and wid is not None:
        doc.transaction = recovery.close_for_lease_end(repo, wid)
        before = save_dirty_work(repo, lease)  # the work that was uncommitted when it began
        if before is not None:
            doc.transaction = f"{doc.transaction}; its earlier uncommitted work saved to {before}"


def empty_for_release(repo: Repo, lease: Lease, *, force: bool, save_dirty: bool, keep_branch: bool) -> EndDoc | None:
    """The part of a release that needs only the worktree's lock, not the repository's.

    Under that lock: refuse (exit 3) uncommitted work or an open transaction unless
    *force* or *save_dirty*, save the work to a snapshot ref, write ``removing``, and delete
    the worktree's files but its ``.git`` file; what is left (git's registration, the
    record, the branch) is :func:`end_lease`'s, under the repository lock. So releases
    made at once delete their files at the same time, and nobody waits for them.

    Returns ``None`` when the lease is not a whole, active worktree of gitxact's (the
    caller then ends it all under the repository lock, as reap would).
    """
    if lease.phase != "active" or lease.worktree_id is None:
        return None
    path = Path(lease.path)
    with repo.locks.worktree(lease.worktree_id):
        now = leases.current(repo, lease)
        if now is None or now.phase != "active" or ownership.why_not_ours(repo, now) is not None:
            return None
        lease = now
        admin = registration.admin_dir_of(path)
        if admin is None or registration.half_made(admin) or not registration.is_registered(repo, path):
            return None
        dirty = refuse_release(repo, lease, force=force or save_dirty)
        doc = EndDoc(agent=lease.agent, path=lease.path, branch=lease.branch, action="release", reason="released")
        if keep_branch and not lease.keep_branch:
            lease = lease.model_copy(update={"phase": "releasing", "keep_branch": True})
            if not leases.replace_record(repo, lease):
                return None
        crashpoint("worktree-end-marked")
        save_work(repo, lease, doc, dirty=dirty, admin=admin)
        crashpoint("worktree-end-saved")
        lease = lease.model_copy(update={"phase": "removing"})
        if not leases.replace_record(repo, lease):
            return None
        crashpoint("worktree-end-removing")
        trace("empty-start", lease.agent)
        # Renamed into gitxact's trash, deleted once the lease is gone (gitxact.worktrees.trash).
        trash.move_in(paths.worktree_root(repo), path, lease.agent, lease.token_hash)
        trace("empty-end", lease.agent)
        crashpoint("worktree-end-emptied")
    return doc


def refuse_release(repo: Repo, lease: Lease, *, force: bool) -> bool | None:
    """Refuse (exit 3) to release a worktree holding uncommitted work or an open
    transaction, unless *force*; returns whether it is dirty (``None``: not looked at)."""
    path = Path(lease.path)
    dirty = snapshots.has_changes(path) if lease.phase == "active" and path.is_dir() else None
    if dirty and not force:
        raise RefusedError(
            f"{path} has uncommitted or untracked work; nothing was released",
            hint="commit it, or pass --force to save it to refs/gitxact/snapshots/ first",
        )
    open_tx = recovery.open_transaction(repo, lease.worktree_id) if lease.worktree_id else None
    if open_tx is not None and not force:
        raise RefusedError(
            f"transaction {open_tx.label()} is open in {path}; nothing was released",
            hint="finish it (gitxact tx commit / tx rollback), or --force to save the worktree "
            "to refs/gitxact/snapshots/ and roll the transaction back",
        )
    return dirty


def _worktree_held(repo: Repo, lease: Lease) -> contextlib.AbstractContextManager[object]:
    wid = worktree_id(repo, lease)
    if wid is None:
        return contextlib.nullcontext()
    return repo.locks.worktree(wid)


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
    doc.branch_deleted, doc.branch_kept_reason, doc.branch_integrated = branches.delete_if_integrated(
        repo, lease.branch, lease.base
    )


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
    orphan = step.action == "remove-orphan"
    return end_lease(repo, step.lease, action=step.action, reason=step.reason, orphan=orphan)


def sweep(
    repo: Repo, *, dry_run: bool, actions: frozenset[str] | None, registry: AgentRegistry | None = None
) -> ReapDoc:
    """Plan and (unless *dry_run*) take the steps whose action is in *actions* (all if ``None``).

    With the fleet's *registry* (PostgreSQL backend), also end the claims that
    :func:`gitxact.worktrees.fleet.end_claims` names, under the same repository lock, so
    no acquire of this clone claims an agent between the two.
    """
    if dry_run:
        records, entries = leases.load(repo), registrations(repo)
        steps, kept = plan(repo, records, entries)
        chosen = [s for s in steps if actions is None or s.action in actions]
        preview = ReapDoc(
            dry_run=True, ended=[_preview(s) for s in chosen], kept=kept, relocked=unlocked(repo, records, entries)
        )
        if registry is not None:
            ended_here = {s.lease.agent: s.lease for s in chosen if s.lease is not None}
            preview.claims_ended = fleet.end_claims(repo, registry, ended_here=ended_here, dry_run=True)
        return preview
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
        if registry is not None:
            planned = {s.lease.agent: s.lease for s in steps if s.lease is not None}
            ended_here = {
                e.agent: planned[e.agent]
                for e in report.ended
                if e.agent in planned and not e.error and e.agent not in records
            }
            report.claims_ended = fleet.end_claims(repo, registry, ended_here=ended_here, dry_run=False)
    # Outside the repository lock (deleting takes long): the files of releases killed after
    # they renamed them into the trash, or whose detached deleter did not finish.
    report.trash_emptied = trash.purge(
        paths.worktree_root(repo), lambda: [lease.token_hash for lease in leases.load(repo).values()]
    )
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
