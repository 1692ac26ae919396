"""``gitxact recover``: a list of named steps, each returning a report.

Recovery after a crash is the same sequence every time, run under the repository
lock held exclusive (nothing else in the repository runs meanwhile, so a step never
races the owner of what it repairs):

1. ``git-locks`` — remove git lock files whose owner is provably dead
   (:mod:`gitxact.git.lockfiles`); they would make every later step fail;
2. ``journals`` — finish or roll back every interrupted transaction
   (:mod:`gitxact.tx.recovery`, whose docstring is the decision table);
3. ``landings`` — finish or undo landings whose lander died (:mod:`gitxact.land.recovery`),
   before ``leases`` ends the leases whose branches they were landing;
4. ``expired-savepoints`` — delete savepoint refs kept past ``gitxact.savepointKeep``.

Other features add their step with one line in :data:`STEPS` (reaping dead leases,
repairing state files): a step is ``f(repo) -> StepReport``. A step that fails reports a
problem and the next step still runs; recover exits 1 if any problem remains.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.errors import GitxactError
from gitxact.git import lockfiles
from gitxact.health.last_recover import RECOVER_FILE, RECOVER_LOCK, LastRecover, RecoverState
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.tx import recovery
from gitxact.tx.journal import journal_ids
from gitxact.worktrees import fleet, sweep

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class StepReport(BaseModel):
    """What one recover step did (``actions``) and what it could not fix (``problems``)."""

    name: str
    actions: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class RecoverDoc(Document):
    ok: bool
    at: float
    steps: list[StepReport]


RecoverStep = Callable[["Repo"], StepReport]


def state_files_step(repo: Repo) -> StepReport:
    """Restore damaged state files from their backups (or start them afresh), clear dead lock records."""
    from gitxact.health import doctor

    findings = doctor.check_state_files(repo, True) + doctor.check_lock_records(repo, True)
    report = StepReport(name="state-files")
    for finding in findings:
        if finding.fixed and not finding.lost_data:
            report.actions.append(f"{finding.problem}: {finding.repair}")
        else:
            # A file restarted empty is repaired, but what it held is gone: say so (exit 1) once.
            done = " (done)" if finding.fixed else ""
            report.problems.append(f"{finding.problem}: {finding.repair}{done}")
    return report


def leases_step(repo: Repo) -> StepReport:
    """End leases whose owner died or whose TTL passed, finish half-done acquires/releases.

    On PostgreSQL the fleet's claims go as ``gitxact worktree reap`` ends them: the claim
    (and its ports) of every lease ended here, an acquire killed midway included, and the
    claims of dead owners. This host's repair must not need the server, though: one that
    does not answer leaves the claims as they are (said among the actions) and the local
    repair is done all the same; such a claim then ends as any claim whose lease is gone:
    when it expires, or at a reap once its owner is dead.
    """
    report = StepReport(name="leases")
    try:
        registry = fleet.reachable_registry(repo)
    except GitxactError as exc:
        registry = None
        report.actions.append(f"left the fleet's claims as they are: {exc.message}")
    try:
        doc = sweep.sweep(repo, dry_run=False, actions=None, registry=registry)
    finally:
        if registry is not None:
            registry.close()
    for item in doc.ended:
        what = f"{item.action} {item.agent or item.path} ({item.reason})"
        if item.stale_lock_removed:
            what += f"; {item.stale_lock_removed}"
        if item.snapshot_ref:
            what += f"; uncommitted work saved to {item.snapshot_ref}"
        if item.transaction:
            what += f"; {item.transaction}"
        if item.error:
            report.problems.append(f"{what}: {item.error}")
        else:
            report.actions.append(what)
    report.actions += [f"locked {agent}'s worktree again" for agent in doc.relocked]
    for claim in doc.claims_ended:
        who = f"pid {claim.pid} on {claim.host}"
        report.actions.append(f"ended the fleet's claim of {claim.agent} ({who}: {claim.reason})")
    return report


def git_locks_step(repo: Repo) -> StepReport:
    """Remove git's lock files whose owner is provably dead (:mod:`gitxact.git.lockfiles` says how).

    Runs under the repository lock held exclusive by :func:`run_recover`.
    """
    report = StepReport(name="git-locks")
    found = lockfiles.candidates(repo.layout.common_dir)
    if not found:
        return report
    busy = lockfiles.holders(found, lockfiles.repository_roots(repo.layout.common_dir))
    for path in found:
        if path in busy:
            # Kept and reported (exit 1): a live git may own it, or the owner cannot be
            # checked; recover cannot prove it left over, so run it again when git is done.
            report.problems.append(f"kept {path}: {busy[path]}")
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        report.actions.append(f"removed {path} (its owner is dead)")
    return report


def journals_step(repo: Repo) -> StepReport:
    """Every worktree's journal through recover's decision table, one worktree lock at a time."""
    report = StepReport(name="journals")
    for worktree_id in journal_ids(repo):
        try:
            actions, problems = recovery.replay_worktree(repo, worktree_id)
        except GitxactError as exc:  # e.g. a damaged journal with no good backup
            report.problems.append(f"{worktree_id}: {exc.message}")
            continue
        report.actions.extend(actions)
        report.problems.extend(problems)
    return report


def land_step(repo: Repo) -> StepReport:
    """Finish landings whose lander died (:mod:`gitxact.land.recovery` has the table), remove stray candidates."""
    from gitxact.land.recovery import recover_all

    actions, problems = recover_all(repo)
    return StepReport(name="landings", actions=actions, problems=problems)


def expired_savepoints_step(repo: Repo) -> StepReport:
    """Delete kept savepoint refs whose time is up."""
    report = StepReport(name="expired-savepoints")
    for worktree_id, deleted in recovery.expire_kept_savepoints(repo):
        report.actions.extend(f"{worktree_id}: deleted expired {name}" for name in deleted)
    return report


#: The steps, in order; keep ``git-locks`` first.
STEPS: list[tuple[str, RecoverStep]] = [
    ("git-locks", git_locks_step),
    ("state-files", state_files_step),
    ("journals", journals_step),
    ("landings", land_step),
    ("leases", leases_step),
    ("expired-savepoints", expired_savepoints_step),
]


def run_recover(repo: Repo, steps: list[tuple[str, RecoverStep]] | None = None) -> RecoverDoc:
    """Run every step under the exclusive repository lock and remember the outcome for ``status``."""
    reports: list[StepReport] = []
    started = time.monotonic()
    with repo.lock(EXCLUSIVE):
        for name, step in STEPS if steps is None else steps:
            try:
                report = step(repo)
            except GitxactError as exc:
                report = StepReport(name=name, problems=[exc.message])
            report.name = name
            reports.append(report)
        doc = RecoverDoc(ok=all(r.ok for r in reports), at=time.time(), steps=reports)
        with repo.locks.resource(RECOVER_LOCK):
            repo.state_file(RECOVER_FILE, RecoverState).save(
                RecoverState(
                    last=LastRecover(
                        at=doc.at,
                        pid=os.getpid(),
                        agent=repo.agent,
                        ok=doc.ok,
                        actions=sum(len(r.actions) for r in reports),
                        problems=[p for r in reports for p in r.problems],
                    )
                )
            )
    repo.locks.events.emit(
        "recover", repo.agent, ok=doc.ok, actions=sum(len(r.actions) for r in reports), secs=time.monotonic() - started
    )
    return doc
