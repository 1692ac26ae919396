"""Serving a target's queue: the oldest requests, one candidate per batch, bisected on a failing check.

The holder of the queue's lock (:mod:`gitxact.land.queue`) runs this. Each attempt is one
transaction, every step journaled before it is taken (:mod:`gitxact.land.records`):

1. build: a temporary worktree at the target's tip; each request's branch rebased (or
   merged) onto it in order; a conflicting one is refused with its paths and left out;
2. check: the check runs in the candidate; if it fails, a batch is split in two and
   each half served again (bisection) until the culprit is refused alone;
3. move: the target moves to the candidate by compare-and-swap from the tip it was
   built on (the worktree that has it checked out follows, under that worktree's lock);
   if the target moved meanwhile (outside the queue), back to 1, a bounded number of times;
4. cleanup: outcomes recorded, the temporary worktree removed.

With ``--parallel N`` the head of the queue is taken as up to N candidates (each a batch),
built on top of each other and checked at once, then landed in order:
:mod:`gitxact.land.speculative`. One candidate is served as above.

An error at any step hands the attempt to :func:`gitxact.land.recovery.finish_work`, the
same function ``recover`` uses, so the live path and recovery cannot disagree.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import EXIT_REFUSED, GitxactError, OperationFailedError
from gitxact.git import refs
from gitxact.land import boundary, candidate, carry, recovery, speculative
from gitxact.land.records import FINAL, LandingFile, Outcome, Request, RequestState, Work, new_id
from gitxact.tx import checks
from gitxact.tx.journal import Owner
from gitxact.util import faults

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class LandBlockedError(GitxactError):
    """The worktree that has the target checked out cannot follow it: refused (exit 3)."""

    exit_code = EXIT_REFUSED


def claim_groups(alive: list[Request]) -> list[list[Request]]:
    """The head of the queue in candidates: up to its ``parallel`` of them, each up to its ``batch``
    of requests that can share a check (:meth:`Request.same_run`); the first that cannot ends it."""
    head = alive[0]
    groups = [[head]]
    for request in alive[1:]:
        if not head.same_run(request):
            break
        if len(groups[-1]) >= head.batch:
            if len(groups) >= head.parallel:
                break
            groups.append([])
        groups[-1].append(request)
    return groups


class Lander:
    """The holder of one queue's lock, serving its oldest requests until ours is done."""

    def __init__(
        self, repo: Repo, lf: LandingFile, queue: str, echo: checks.Echo | None, *, remote: str | None = None
    ) -> None:
        self.repo = repo
        self.lf = lf
        self.queue = queue
        self.echo = echo
        # The remote as *this* clone names it: a shared queue holds requests filed in clones
        # that may call the same remote (one URL, one queue) by another name.
        self.remote = remote
        #: Speculative rounds: how often each request found the target moved outside the queue.
        self.moves: dict[str, int] = {}

    def serve_until(self, request_id: str) -> None:
        while True:
            _actions, problems = recovery.settle_queue(self.repo, self.lf, self.queue)
            if problems:
                raise OperationFailedError(
                    "the queue holds a landing that could not be finished: " + "; ".join(problems),
                    hint="run `gitxact recover`",
                )
            groups = self._claim(request_id)
            if groups is None:
                return
            if len(groups) == 1:
                self.serve_group(groups[0])
            else:
                speculative.serve_round(self, groups)

    def _claim(self, request_id: str) -> list[list[Request]] | None:
        """The head of the queue, taken up (``serving``) in candidates (:func:`claim_groups`).

        Until our request is final, and then while a speculative round left requests back in
        the queue (``requeued``): they were taken up, and a request taken up is seen through,
        its requester alive or not, as a batch's are.
        """
        with self.lf.change() as state:
            mine = state.request(request_id)
            pending = state.pending(self.queue)
            if mine is None or (mine.state in FINAL and not any(r.requeued for r in pending)):
                return None
            alive: list[Request] = []
            for request in pending:
                if request.owner.is_dead() and not request.requeued:
                    state.finish(request, "withdrawn", Outcome(reason="its requester died before its turn", code=1))
                else:
                    alive.append(request)
            if not alive:  # ours is not pending (nor final): nothing here for this lander to serve
                return None
            groups = claim_groups(alive)
            now = time.time()
            for request in (r for group in groups for r in group):
                request.state = "serving"
                request.started = now
            return [[r.model_copy(deep=True) for r in group] for group in groups]

    # -- one batch -----------------------------------------------------------------------------

    def serve_group(self, group: list[Request]) -> None:
        """Land *group*, bisecting on a failing check until each culprit is refused alone."""
        try:
            failed = self._attempts(group)
        except GitxactError as exc:
            self.finish_all(group, "failed" if exc.exit_code != EXIT_REFUSED else "refused", exc.message, exc.exit_code)
            return
        if failed is None:
            return
        self.bisect(*failed)

    def bisect(self, survivors: list[Request], result: checks.CheckResult) -> None:
        """*survivors* failed their check together: the culprit alone is refused, each half served again."""
        if len(survivors) == 1:
            self.refuse_check(survivors[0], result)
            return
        half = len(survivors) // 2
        self.serve_group(survivors[:half])
        self.serve_group(survivors[half:])

    def _attempts(self, group: list[Request]) -> tuple[list[Request], checks.CheckResult] | None:
        retries = group[0].retries
        for attempt in range(1, retries + 2):
            try:
                return self._attempt(group, attempt)
            except candidate.MovedError:
                group = self._still_serving(group)
                if not group:
                    return None
        raise OperationFailedError(
            f"{group[0].target} kept moving outside the queue: gave up after {retries + 1} attempts",
            hint="land again when it is quieter, or raise --retries",
        )

    def _still_serving(self, group: list[Request]) -> list[Request]:
        state = self.lf.peek()
        return [r for r in group if (now := state.request(r.id)) is not None and now.state == "serving"]

    def new_work(self, group: list[Request], *, reads_target: bool = True) -> Work:
        """The record of one candidate for *group*, in its first step (``build``); not saved yet.

        *reads_target*: whether it fetches a remote target's tip (a speculative round's later
        candidates build on the one before, not on the target).
        """
        head = group[0]
        remote = self.remote if head.remote is not None and self.remote is not None else head.remote
        work_id = new_id("work")
        return Work(
            id=work_id,
            queue=self.queue,
            target=head.target,
            remote=remote,
            requests=[r.id for r in group],
            phase="build",
            owner=Owner.current(self.repo.agent, "land"),
            started=time.time(),
            worktree=str(candidate.worktree_folder(self.repo, work_id)),
            fetch_ref=f"{candidate.FETCH_PREFIX}{work_id}" if remote is not None and reads_target else None,
        )

    def _attempt(self, group: list[Request], attempt: int) -> tuple[list[Request], checks.CheckResult] | None:
        """One build-check-move; returns the requests whose check failed together, if it did."""
        work = self.new_work(group)
        self.save(work)
        try:
            return self._build_check_move(work, group, attempt)
        except candidate.MovedError:
            self.drop(work)
            raise
        except BaseException as exc:
            reason = exc.message if isinstance(exc, GitxactError) else f"interrupted ({type(exc).__name__})"
            code = exc.exit_code if isinstance(exc, GitxactError) else 1
            try:
                recovery.finish_work(self.repo, self.lf, work, reason, code=code)
            except GitxactError as cleanup:
                with contextlib.suppress(GitxactError):
                    work.failed = f"{reason}; then {cleanup.message}"
                    self.save(work)
            if isinstance(exc, GitxactError):
                return None  # recorded on its requests; the queue moves on
            raise

    def _build_check_move(
        self, work: Work, group: list[Request], attempt: int
    ) -> tuple[list[Request], checks.CheckResult] | None:
        repo = self.repo
        head = group[0]
        wt = Path(work.worktree)
        base = candidate.read_target(repo, head.target, work.remote, work.fetch_ref)
        if self.lf.shared and work.remote is not None:
            carry.fetch_missing(repo, work.remote, {r.id: r.tip for r in group})
        candidate.add_worktree(repo, wt, base, candidate.lock_reason(work.id, os.getpid()))
        faults.crashpoint("land-worktree-added")
        applied: list[Request] = []
        commits: dict[str, list[str]] = {}
        landed_as: dict[str, dict[str, str]] = {}
        already: list[Request] = []
        for request in group:
            result = candidate.apply(
                repo, wt, request.tip, strategy=request.strategy, branch=request.branch, target=request.target
            )
            if result.conflicts:
                paths = ", ".join(result.conflicts)
                self.finish_one(
                    request,
                    "refused",
                    Outcome(
                        reason=f"it conflicts with {head.target} in: {paths}",
                        conflicts=result.conflicts,
                        code=EXIT_REFUSED,
                    ),
                )
                work.requests.remove(request.id)
            elif result.already:
                already.append(request)
            else:
                applied.append(request)
                commits[request.id] = result.commits
                landed_as[request.id] = result.landed_as
        tip = candidate.head(repo, wt)
        work.base = base
        work.candidate = tip
        if tip != base and head.check is not None:
            work.phase = "check"
            self.save(work)
            spec = checks.CheckSpec(head.check.argv, head.check.display, head.check.shell, head.check.timeout)
            verdict = checks.run(spec, cwd=wt, log_dir=repo.log_dir(), label="land", echo=self.echo)
            if verdict.interrupted:
                raise OperationFailedError("the check was interrupted")
            if not verdict.passed:
                if len(applied) == 1:
                    self.finish_all(already, "landed", "already on the target", 0, landed_tip=base, already=True)
                    self.drop(work)
                    self.refuse_check(applied[0], verdict)
                    return None
                self.drop(work)
                return [*applied, *already], verdict
        ids = [r.id for r in group]
        outcomes = {
            r.id: Outcome(
                reason="landed" if r in applied else "already on the target",
                landed_tip=tip,
                commits=commits.get(r.id, []),
                landed_as=landed_as.get(r.id, {}),
                already=r in already,
                attempts=attempt + r.requeued,  # every candidate it was built in
                batch=ids,
                served_by=os.getpid(),
            )
            for r in [*applied, *already]
        }
        work.landed = outcomes
        if tip != base:
            self.move(work, head.target, base, tip)
        work.phase = "cleanup"
        self.save(work)
        self.drop(work, outcomes=work.landed)
        return None

    def move(self, work: Work, target: str, base: str, tip: str) -> None:
        repo = self.repo
        if work.remote is None:
            boundary.check_target(repo, target)  # again: a lease may have been taken while the request waited
        message = f"gitxact land: {', '.join(work.requests)}"
        checked = candidate.checked_out_at(repo, target) if work.remote is None else None
        work.phase = "move"
        work.checked_out = str(checked) if checked is not None else None
        self.save(work)
        # Shared queue: the step where another host can read it, and proof that the lock is still ours.
        self.lf.publish_step(work)
        try:
            if work.remote is not None:
                candidate.move_remote(repo, work.remote, target, base, tip)
            elif checked is None:
                candidate.move_local(repo, target, base, tip, message)
            else:
                warning = candidate.holding_worktree(
                    repo,
                    candidate.worktree_id_of(repo, checked),
                    lambda: self._move_checked_out(target, checked, base, tip, message),
                )
                if warning:
                    for outcome in work.landed.values():
                        outcome.warning = warning
        except candidate.TargetMovedError as exc:
            raise candidate.MovedError from exc
        faults.crashpoint("land-moved")

    def _move_checked_out(self, target: str, wt: Path, base: str, tip: str, message: str) -> str | None:
        """Under the lock of the worktree that has *target* checked out: it follows, or nothing moves."""
        repo = self.repo
        if refs.read(repo.layout.common_dir, f"refs/heads/{target}") != base:
            raise candidate.TargetMovedError(f"{target} moved outside the queue")
        why = candidate.can_sync(repo, wt, base, tip)
        if why is not None:
            raise LandBlockedError(
                f"{target} is checked out in {wt}, whose uncommitted changes would be overwritten: {why}",
                hint=f"commit or stash them in {wt}, then land again",
            )
        candidate.move_local(repo, target, base, tip, message)
        faults.crashpoint("land-moved-before-sync")
        return candidate.sync_checked_out(repo, wt, base, tip)

    # -- records --------------------------------------------------------------------------------

    def save(self, work: Work) -> None:
        with self.lf.change() as state:
            state.work = [w for w in state.work if w.id != work.id] + [work]

    def drop(self, work: Work, outcomes: dict[str, Outcome] | None = None) -> None:
        """Remove the temporary worktree and fetched ref, then the step (recording *outcomes*)."""
        candidate.remove_worktree(self.repo, Path(work.worktree))
        candidate.delete_fetch_ref(self.repo, work.fetch_ref)
        recovery.remember_landed(self.repo, self.lf, work, outcomes or {})
        with self.lf.change() as state:
            for request_id, outcome in (outcomes or {}).items():
                request = state.request(request_id)
                if request is not None and request.state not in FINAL:
                    state.finish(request, "landed", outcome)
            state.work = [w for w in state.work if w.id != work.id]

    def finish_one(self, request: Request, final: RequestState, outcome: Outcome) -> None:
        outcome.served_by = os.getpid()
        with self.lf.change() as state:
            current = state.request(request.id)
            if current is not None and current.state not in FINAL:
                state.finish(current, final, outcome)

    def finish_all(
        self,
        group: list[Request],
        final: RequestState,
        reason: str,
        code: int,
        *,
        landed_tip: str | None = None,
        already: bool = False,
    ) -> None:
        for request in group:
            self.finish_one(request, final, Outcome(reason=reason, code=code, landed_tip=landed_tip, already=already))

    def refuse_check(self, request: Request, result: checks.CheckResult) -> None:
        self.finish_one(
            request,
            "refused",
            Outcome(
                reason=f"the check `{result.spec.display}` {result.describe()} on it (its log: {result.log})",
                check_log=str(result.log),
                code=EXIT_REFUSED,
            ),
        )
