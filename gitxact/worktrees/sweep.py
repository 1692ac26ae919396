"""Reap and repair: the plan of what every lease and registration needs, and its steps.

Each step finishes or undoes what a SIGKILL left (the orders are in
:mod:`gitxact.worktrees.acquire` and :mod:`gitxact.worktrees.lifecycle`), or ends a
lease that is not live:

* a ``provisioning`` record whose acquire is gone is undone (``undo-acquire``), a
  ``releasing`` or ``removing`` one whose release is gone is finished
  (``finish-release``); one still at work is kept (:mod:`gitxact.worktrees.unfinished`);
* a record whose folder or git registration is gone is forgotten (``forget-missing``),
  a registration under our lock reason whose folder is gone is removed
  (``unregister``), and one whose folder is there but that no record holds (a
  ``git worktree add`` that outlived its killed parent) is ended like a lease
  (``remove-orphan``); an admin folder git never finished is discarded (``undo-half-made``);
* a record that cannot be gitxact's is dropped, and only the record (``drop-foreign``);
* a lease whose owner is gone, or whose TTL passed with its owner unprovable, is ended
  (``reap``), its dirty work saved first.

Reap and repair run under the repository lock (exclusive); :func:`gitxact.worktrees.lifecycle.end_lease`
takes each worktree's lock to end it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.util.names import validate_agent
from gitxact.worktrees import fleet, ownership, paths, registration, trash
from gitxact.worktrees.lifecycle import end_lease
from gitxact.worktrees.paths import real, real_paths
from gitxact.worktrees.results import EndDoc, ReapDoc
from gitxact.worktrees.unfinished import in_progress

if TYPE_CHECKING:
    from gitxact.backends.pg_registry import AgentRegistry
    from gitxact.core.repo import Repo
    from gitxact.git import run as git
    from gitxact.leases.records import Lease

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
    steps, kept = _record_steps(repo, records, entries)
    known = set(real_paths([lease.path for lease in records.values()]))
    steps += _unleased_steps(repo, entries, known)
    # Admin folders git never finished that no step above ends.
    steps += _half_made_steps(repo, {real(step.path) for step in steps} | known)
    return steps, kept


def _record_steps(
    repo: Repo, records: dict[str, Lease], entries: dict[str, git.WorktreeEntry]
) -> tuple[list[Step], dict[str, str]]:
    """The step each record needs, and why each of the others is kept (live, or at work)."""
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
    return steps, kept


def _unleased_steps(repo: Repo, entries: dict[str, git.WorktreeEntry], known: set[str]) -> list[Step]:
    """git's registrations that gitxact made (its lock reason, under its root) and no record
    holds: folder gone (``unregister``), or there (``remove-orphan``). Others are git's or
    a person's to prune."""
    steps: list[Step] = []
    first = next(iter(entries), None)  # the main worktree (or the bare repository)
    root = real(paths.worktree_root(repo, entries))
    for path, entry in sorted(entries.items()):
        if path in known or path == first or entry.bare:
            continue
        ours = (entry.locked or "").startswith(lease_reader.LOCK_REASON_PREFIX) and path.startswith(root + os.sep)
        if not ours:
            continue
        branch = (entry.branch or "").removeprefix("refs/heads/")
        if not os.path.isdir(path):
            steps.append(Step("unregister", "its folder is gone and no lease holds it", path, branch))
        else:
            # Made and locked by gitxact, yet no record: a git child that outlived a killed
            # acquire (the record was undone while it still ran). Nobody holds it.
            reason = "gitxact created and locked it but no lease holds it"
            steps.append(Step("remove-orphan", reason, path, branch, _orphan_lease(path, entry)))
    return steps


def _half_made_steps(repo: Repo, covered: set[str]) -> list[Step]:
    """Admin folders of gitxact's that git never finished (a kill inside ``git worktree add``)
    and whose folder no other step ends: git does not even list those without a ``gitdir``."""
    steps: list[Step] = []
    for admin in registration.admin_dirs(repo):
        if not (registration.locked_by_gitxact(admin) and registration.half_made(admin)):
            continue
        folder = registration.folder_of(admin)
        if folder is not None and real(folder) in covered:
            continue
        reason = "a `git worktree add` was killed before it finished (no lease holds it)"
        steps.append(Step("undo-half-made", reason, str(admin), ""))
    return steps


def unregister(repo: Repo, step: Step) -> EndDoc:
    """Drop git's record of a worktree whose folder is gone (locked by us, so ``prune`` won't)."""
    doc = EndDoc(agent="", path=step.path, branch=step.branch, action=step.action, reason=step.reason)
    registration.remove_worktree(repo, Path(step.path))
    doc.worktree_removed = True
    return doc


def take(repo: Repo, step: Step) -> EndDoc:
    """Take one planned step (the caller holds the repository lock exclusive)."""
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
        return _preview_sweep(repo, actions, registry)
    repo.store.ensure("locks", "state")
    report = ReapDoc(dry_run=False)
    with repo.locks.repository(EXCLUSIVE):
        steps, report.kept = plan(repo, leases.load_records(repo), paths.registrations_by_real_path(repo))
        _take_all(repo, [s for s in steps if actions is None or s.action in actions], report)
        records = leases.load_records(repo)
        _relock(repo, records, report)
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


def _preview_sweep(repo: Repo, actions: frozenset[str] | None, registry: AgentRegistry | None) -> ReapDoc:
    """What :func:`sweep` would do, taking no lock and changing nothing (``doctor``, ``--dry-run``)."""
    records, entries = leases.load(repo), paths.registrations_by_real_path(repo)
    steps, kept = plan(repo, records, entries)
    chosen = [s for s in steps if actions is None or s.action in actions]
    preview = ReapDoc(
        dry_run=True, ended=[_preview(s) for s in chosen], kept=kept, relocked=unlocked(repo, records, entries)
    )
    if registry is not None:
        ended_here = {s.lease.agent: s.lease for s in chosen if s.lease is not None}
        preview.claims_ended = fleet.end_claims(repo, registry, ended_here=ended_here, dry_run=True)
    return preview


def _take_all(repo: Repo, steps: list[Step], report: ReapDoc) -> None:
    """Each step in turn; one that fails is reported and the others are still taken."""
    for step in steps:
        try:
            report.ended.append(take(repo, step))
        except GitxactError as exc:
            failed = _preview(step)
            failed.error = exc.message
            report.ended.append(failed)
            report.errors += 1
        repo.locks.events.emit("reap", repo.agent, lease=report.ended[-1].agent, action=step.action)


def _relock(repo: Repo, records: dict[str, Lease], report: ReapDoc) -> None:
    """Lock again the worktrees of active leases that someone unlocked (see :func:`unlocked`)."""
    for agent in unlocked(repo, records, paths.registrations_by_real_path(repo)):
        lease = records[agent]
        registration.relock(
            repo, Path(lease.path), registration.lock_reason(lease.agent, lease.owner_pid, lease.owner_host)
        )
        report.relocked.append(agent)


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


def _orphan_lease(path: str, entry: git.WorktreeEntry) -> Lease:
    """A stand-in record for an orphan, so it is ended like any lease (work saved first)."""
    named = (entry.locked or "").removeprefix(lease_reader.LOCK_REASON_PREFIX).split(" ", 1)[0]
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
