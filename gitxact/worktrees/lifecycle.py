"""Ending a lease: release, and the one teardown that release, reap, repair and a failed acquire share.

Every end is ordered so that a SIGKILL at any point leaves a state that
:mod:`gitxact.worktrees.sweep` can finish:

* release needs only the worktree's lock to save dirty work to a snapshot ref, write
  ``removing`` and delete the files (all but the ``.git`` file: :func:`empty_for_release`);
  then, under the repository lock, git removes the registration, the record is dropped
  and only then is the branch deleted (:func:`end_lease`). A crash before ``removing``
  leaves the lease as it was (plus a snapshot ref): retry, or reap. A ``removing`` record
  whose release is gone is finished (``finish-release``); its work was saved before any
  file went, so what is still there is saved again first only when the agent's newest
  snapshot does not hold it as it is (a forged ``removing`` record names work nobody
  saved). ``--keep-branch`` is written down first, as ``releasing``, so a release
  finished after a crash honours it. A crash after the record is gone leaves at most a
  branch, which is what a kept branch looks like anyway;
* an acquire that failed or was killed is undone by the same :func:`end_lease`
  (``undo-acquire``): a checkout it never finished is told by the missing index, and the
  files it wrote are git's own (a file that is not is saved first).

Dirty work is always snapshotted before a worktree is removed, whichever path got
there. :func:`end_lease` runs under the repository lock (exclusive), and takes the
worktree's lock itself.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import RefusedError
from gitxact.git import lockfiles, refs, snapshots
from gitxact.leases import records as leases
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.project import trust
from gitxact.tx import recovery
from gitxact.util import console
from gitxact.util.faults import crashpoint
from gitxact.util.names import validate_agent
from gitxact.worktrees import branches, fleet, ownership, paths, registration, setup, trash
from gitxact.worktrees.results import EndDoc, ReleaseDoc
from gitxact.worktrees.trace import trace
from gitxact.worktrees.unfinished import worktree_id

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def release(
    repo: Repo, agent: str, *, token: str | None, force: bool, keep_branch: bool, save_dirty: bool
) -> ReleaseDoc:
    """End *agent*'s lease for its holder (see :meth:`gitxact.worktrees.manager.Worktrees.release`).

    Its teardown first, under the worktree's lock; then :func:`empty_for_release`, under that
    lock alone, so releases made at once delete their files at the same time; then, under the
    repository lock, :func:`end_lease` finishes (git's registration, the record, the branch).
    """
    validate_agent(agent)
    repo.store.ensure("locks", "state")
    lease = ownership.lease_of(repo, agent, token, force=force, verb="release")
    torn = _teardown(repo, lease, force=force or save_dirty)
    if torn.clean:
        # Clean before the teardown ran: whatever it left is saved, and never refuses the release.
        save_dirty = True
    emptied = empty_for_release(repo, lease, force=force, save_dirty=save_dirty, keep_branch=keep_branch)
    with repo.locks.repository(EXCLUSIVE):
        if emptied is None:
            # Not a whole, active worktree (or it changed meanwhile): everything here.
            lease = ownership.lease_of(repo, agent, token, force=force, verb="release")
            dirty = refuse_release(repo, lease, force=force or save_dirty)
            ended = end_lease(repo, lease, action="release", reason="released", keep_branch=keep_branch, dirty=dirty)
        else:
            now = leases.current(repo, lease)
            if now is None:  # a reap finished it meanwhile
                emptied.reason += "; finished meanwhile by another gitxact (reap or recover)"
                emptied.claim_left = fleet.release(repo, lease)
                _empty_trash(repo, lease)
                return ReleaseDoc(**emptied.model_dump(), **torn.fields())
            ended = end_lease(repo, now, action="release", reason="released", keep_branch=keep_branch)
            ended.snapshot_ref = emptied.snapshot_ref
            ended.transaction = emptied.transaction
            ended.stale_lock_removed = emptied.stale_lock_removed
    if not ended.error:
        # The fleet's claim ends with the lease (PostgreSQL backend), if it is still this lease's.
        ended.claim_left = fleet.release(repo, lease)
    _empty_trash(repo, lease)
    return ReleaseDoc(**ended.model_dump(), **torn.fields())


@dataclass(frozen=True)
class _Teardown:
    """What a release's teardown did (nothing, when the lease has none)."""

    log: str | None = None
    error: str | None = None
    #: The worktree was clean before the teardown ran.
    clean: bool = False

    def fields(self) -> dict[str, str | None]:
        return {"teardown_log": self.log, "teardown_error": self.error}


def _teardown(repo: Repo, lease: Lease, *, force: bool) -> _Teardown:
    """Run *lease*'s teardown in its worktree, under that worktree's lock, unless the
    release would be refused (exit 3 first: nothing is torn down for a release that
    does not happen) or the file it came from is no longer trusted."""
    if not lease.teardown or lease.phase != "active" or lease.worktree_id is None:
        return _Teardown()
    if lease.config_sha is None or not trust.is_trusted(repo, lease.config_sha):
        why = "teardown not run: the .gitxact.toml the lease was made from is no longer trusted"
        console.warn(why)
        return _Teardown(error=why)
    with repo.locks.worktree(lease.worktree_id):
        dirty = refuse_release(repo, lease, force=force)
        ran = setup.run_commands(repo, lease, lease.teardown, "teardown")
    if ran.failed is not None:
        console.warn(f"{ran.describe('teardown')}; releasing all the same")
    return _Teardown(
        log=str(ran.log), error=None if ran.failed is None else ran.describe("teardown"), clean=dirty is False
    )


def _empty_trash(repo: Repo, lease: Lease) -> None:
    """Once *lease* is gone: its files, renamed into the trash by the release, deleted by a
    detached process (the release does not wait); a reap finishes what that leaves."""
    entry = trash.entry_of(paths.worktree_root(repo), lease.agent, lease.token_hash)
    if leases.current(repo, lease) is None and os.path.lexists(entry):
        trash.delete_later(entry)


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
            now = _still_to_end(repo, lease, doc)
            if now is None:
                return doc
            lease = now
        undo = lease.phase == "provisioning"
        if not undo and keep_branch:
            lease = _note_keep_branch(repo, lease)
        crashpoint("worktree-end-marked")
        keep_branch = keep_branch or lease.keep_branch
        _remove_worktree(repo, lease, doc, dirty=dirty)
    crashpoint("worktree-end-removed")
    leases.drop_record(repo, lease)
    crashpoint("worktree-end-dropped")
    _settle_branch(repo, lease, doc, keep_branch=keep_branch, undo=undo)
    return doc


def _still_to_end(repo: Repo, lease: Lease, doc: EndDoc) -> Lease | None:
    """*lease*'s record as it is now, under its worktree's lock; ``None`` (said in *doc*) when
    nothing is left to end: it ended meanwhile, or the acquire it was thought to undo finished."""
    now = leases.current(repo, lease)
    if now is None:
        doc.reason += "; it had ended meanwhile"
        return None
    if lease.phase == "provisioning" and now.phase != "provisioning":
        doc.reason += f"; its acquire finished meanwhile ({now.phase}): left alone"
        return None
    if now.path != lease.path:
        # The ownership check judged *lease*'s folder; a record that names another one now
        # (nothing of gitxact's moves a lease: a forgery) gets nothing removed, here or there.
        doc.reason += f"; its record changed meanwhile (now {now.path}): left alone"
        return None
    return now


def _note_keep_branch(repo: Repo, lease: Lease) -> Lease:
    """``releasing`` with ``keep_branch``, written before anything goes, unless already there.

    Only the keep-branch choice needs writing down first: without it, a crash after the
    removal leaves an active record whose folder is gone, which ``forget-missing`` ends
    exactly as this would (saving one fsync'd write on every plain release).
    """
    if lease.keep_branch or lease.phase == "removing":
        return lease
    lease = lease.model_copy(update={"phase": "releasing", "keep_branch": True})
    leases.save_record(repo, lease)
    return lease


def _remove_worktree(repo: Repo, lease: Lease, doc: EndDoc, *, dirty: bool | None) -> None:
    """Its work saved, the worktree out of git's registry and its folder gone (if empty).
    The caller holds the worktree's lock and the repository lock."""
    path = Path(lease.path)
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
