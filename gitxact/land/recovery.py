"""Finishing what a landing left behind: the decision table for a ``Work`` record.

A lander writes each step to ``landing.json`` before it takes it (:mod:`gitxact.land.records`).
When it dies (SIGKILL, power cut) or gives up on an error, whoever next holds that
target's queue, or ``gitxact recover``, reads the step and applies one row, so the
request ends ``landed`` or ``failed``, never half:

===========  ===================================================================
phase        what is done
===========  ===================================================================
build        nothing moved: the requests fail; the temporary worktree and fetched ref go
check        as ``build`` (a check that did not finish has not passed)
move         the target is read: at the candidate, the requests landed (and the
             worktree that has the target checked out is brought along); elsewhere
             the move never happened, and they fail
cleanup      the outcomes were decided: record them; the worktree and ref go
===========  ===================================================================

Requests still ``serving`` with no step (a batch between two bisection attempts) fail
too. Running it twice changes nothing the second time.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.backends.named import open_named_locks
from gitxact.errors import EXIT_FAILED, EXIT_REFUSED, GitxactError, LockTimeoutError
from gitxact.git import run as git
from gitxact.land import candidate
from gitxact.land.records import FINAL, LandingFile, Outcome, Request, Work
from gitxact.land.store import open_landing
from gitxact.util import console
from gitxact.worktrees import landed

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


def finish_work(
    repo: Repo, lf: LandingFile, work: Work, why: str, *, code: int = EXIT_FAILED, hold_worktree: bool = True
) -> list[str]:
    """Apply the table to one step; returns what was done (raises if git cannot tell or do it).

    Requests that did not land end ``failed`` with *why* (``refused`` when *code* is 3: the
    live lander's own refusal). *hold_worktree*: take the lock of the worktree that has the
    target checked out before bringing it along (``recover`` holds every worktree's lock).
    """
    done: list[str] = []
    outcomes: dict[str, Outcome] = {}  # the requests that landed
    if work.phase == "move":
        assert work.candidate is not None  # noqa: S101 - written with the phase
        assert work.base is not None  # noqa: S101 - as above
        tip = candidate.current_tip(repo, work.target, work.remote)
        if tip == work.candidate:
            if work.checked_out is not None:
                warning = _sync(repo, Path(work.checked_out), work.base, work.candidate, hold=hold_worktree)
                if warning:
                    done.append(warning)
            outcomes.update(work.landed)
            done.append(f"{work.id}: {work.target} had moved to {work.candidate[:12]}: landed")
        else:
            done.append(f"{work.id}: {work.target} did not move: the landing did not happen")
    elif work.phase == "cleanup":
        outcomes.update(work.landed)
    if candidate.remove_worktree(repo, Path(work.worktree)):
        done.append(f"{work.id}: removed the temporary worktree {work.worktree}")
    candidate.delete_fetch_ref(repo, work.fetch_ref)
    remember_landed(repo, lf, work, outcomes)
    with lf.change() as state:
        for request_id in work.requests:
            request = state.request(request_id)
            if request is None or request.state in FINAL:
                continue
            if request_id in outcomes:
                state.finish(request, "landed", outcomes[request_id])
            elif code == EXIT_REFUSED:
                state.finish(request, "refused", Outcome(reason=why, code=code))
            else:
                state.finish(request, "failed", Outcome(reason=f"{why}; nothing landed", code=code))
        state.work = [w for w in state.work if w.id != work.id]
    return done


def remember_landed(repo: Repo, lf: LandingFile, work: Work, outcomes: dict[str, Outcome]) -> None:
    """Write what landed to the branches' durable record (:mod:`gitxact.worktrees.landed`),
    before the outcomes: release and ``prune-branches`` read it there long after the
    queue's history has let the request go. Best effort: without it a branch is judged by
    git alone (its patches, its tree), which never deletes more."""
    ref = f"refs/heads/{work.target}" if work.remote is None else f"refs/remotes/{work.remote}/{work.target}"
    if not outcomes or not git.check_ref_format(ref):
        return  # a remote named by URL has no remote-tracking ref to confirm the landing by
    state = lf.peek()
    entries: list[landed.LandedBranch] = []
    for request_id, outcome in outcomes.items():
        request = state.request(request_id)
        if request is None or outcome.already or outcome.landed_tip is None:
            continue
        entries.append(
            landed.LandedBranch(
                branch=request.branch,
                tip=request.tip,
                target=work.target,
                ref=ref,
                landed_tip=outcome.landed_tip,
                commits=[landed.LandedCommit(original=old, landed=new) for old, new in outcome.landed_as.items()],
                request=request_id,
                at=time.time(),
            )
        )
    try:
        landed.remember(repo, entries)
    except GitxactError as exc:
        console.warn(f"could not record what landed in {landed.FILE_NAME} ({exc.message}); git alone will judge it")


def _sync(repo: Repo, wt: Path, old: str, new: str, *, hold: bool) -> str | None:
    if not wt.is_dir():
        return None
    if not hold:
        return candidate.sync_checked_out(repo, wt, old, new)
    try:
        return candidate.holding_worktree(
            repo, candidate.worktree_id_of(repo, wt), lambda: candidate.sync_checked_out(repo, wt, old, new)
        )
    except LockTimeoutError as exc:
        return f"{wt} was not brought along ({exc.message}); run `git -C {wt} read-tree -m -u {old} {new}`"


def settle_queue(
    repo: Repo, lf: LandingFile, queue: str, *, hold_worktree: bool = True, idle: bool = False
) -> tuple[list[str], list[str]]:
    """Finish every step and request a dead lander left in *queue*; the caller holds the queue's lock.

    Returns (actions, problems). Requests whose requester died before its turn are withdrawn;
    but one a speculative round put back (``requeued``) was taken up, and the lander calling
    this serves it next: only ``recover`` (*idle*: no lander at work) withdraws it.
    """
    actions: list[str] = lf.settle_foreign(queue)  # shared queue: other clones' dead landers
    problems: list[str] = []
    state = lf.peek()
    stale = [r for r in state.requests if r.queue == queue and r.state in ("pending", "serving")]

    def orphaned(request: Request) -> bool:
        return request.state == "pending" and request.owner.is_dead() and (idle or not request.requeued)

    if not state.work_of(queue) and not any(r.state == "serving" or orphaned(r) for r in stale):
        return actions, problems  # the usual case: nothing to write
    for work in state.work_of(queue):
        why = f"its lander ({work.owner.describe()}) stopped at the {work.phase} step"
        if work.failed:
            why = f"its lander gave up: {work.failed}"
        try:
            actions += finish_work(repo, lf, work, why, hold_worktree=hold_worktree)
        except GitxactError as exc:
            problems.append(f"{work.id}: could not finish its {work.phase} step: {exc.message}")
    if problems:
        return actions, problems
    with lf.change() as state:
        for request in [r for r in state.requests if r.queue == queue]:
            if request.state == "serving":
                state.finish(
                    request, "failed", Outcome(reason="its lander stopped; request it again", code=EXIT_FAILED)
                )
                actions.append(f"{request.id}: failed (its lander stopped before it landed)")
            elif orphaned(request):
                state.finish(
                    request, "withdrawn", Outcome(reason="its requester died before its turn", code=EXIT_FAILED)
                )
                actions.append(f"{request.id}: withdrawn (its requester {request.owner.pid} died)")
    return actions, problems


def recover_all(repo: Repo) -> tuple[list[str], list[str]]:
    """``gitxact recover``'s step: every queue no live lander holds, then stray temporary worktrees.

    Runs under the whole-repository lock, so it holds every worktree's lock already.
    """
    path = repo.state_path("landing.json")
    if not path.exists() and not path.with_name(path.name + ".bak").exists() and not (repo.state_dir / "land").exists():
        return [], []
    lf = open_landing(repo)
    try:
        actions, problems = _settle_idle_queues(repo, lf)
        # Listed before the records are read: a lander records its worktree before making it,
        # so any folder seen here that is not in the records read after is a dead lander's.
        found = candidate.strays(repo)
        known = {os.path.realpath(w.worktree) for w in lf.peek().work}
    finally:
        lf.close()
    for stray in [path for path in found if os.path.realpath(path) not in known]:
        with contextlib.suppress(OSError):
            candidate.remove_worktree(repo, stray)
            actions.append(f"removed the stray temporary worktree {stray}")
    return actions, problems


def _settle_idle_queues(repo: Repo, lf: LandingFile) -> tuple[list[str], list[str]]:
    """Settle every queue with something unfinished that no lander holds now."""
    actions: list[str] = []
    problems: list[str] = []
    state = lf.peek()
    queues = sorted({r.queue for r in state.requests if r.state not in FINAL} | {w.queue for w in state.work})
    locks = open_named_locks(repo)
    try:
        for queue in queues:
            try:
                with locks.hold(queue, timeout=0) as grant:
                    lf.holding(getattr(grant, "session", None))
                    done, failed = settle_queue(repo, lf, queue, hold_worktree=False, idle=True)
            except LockTimeoutError:
                actions.append(f"{queue}: left alone, a lander is at work")
                continue
            actions += done
            problems += failed
    finally:
        locks.close()
    return actions, problems
