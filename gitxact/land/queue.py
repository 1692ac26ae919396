"""``gitxact land``: a first-come, first-served landing queue per target, transactional.

A request is filed in ``landing.json`` (its ``seq`` is its place), then waits for the
target's queue lock, the resource lock ``land.<target>`` whose FIFO tickets serve
landers in arrival order. Whoever holds that lock serves the *oldest* pending requests
of the queue, its own or not, so requests land exactly in the order they were filed,
and a batch (``--batch N``) is simply the head of the queue taken N at a time. A
requester whose request was served by another lander finds its outcome when its turn
comes (or, past its timeout, waits for the lander it was served by).

Serving a batch is one transaction (:mod:`gitxact.land.candidate` does the git work,
:mod:`gitxact.land.records` journals each step first, :mod:`gitxact.land.recovery` finishes
a step whose lander died or gave up):

1. build: a temporary worktree at the target's tip; each request's branch rebased (or
   merged) onto it in order; a conflicting one is refused with its paths and left out;
2. check: the check runs in the candidate; if it fails, a batch is split in two and
   each half served again (bisection) until the culprit is refused alone;
3. move: the target moves to the candidate by compare-and-swap from the tip it was
   built on; if it moved meanwhile (outside the queue), back to 1 (bounded);
4. cleanup: outcomes recorded, the temporary worktree removed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import (
    EXIT_REFUSED,
    EXIT_USAGE,
    GitxactError,
    LockTimeoutError,
    OperationFailedError,
    UsageError,
)
from gitxact.git import refs
from gitxact.land import candidate, recovery
from gitxact.land.records import (
    FINAL,
    CheckRecord,
    LandingFile,
    Outcome,
    Request,
    RequestState,
    Strategy,
    Work,
    new_id,
    queue_name,
)
from gitxact.land.results import LandDoc, LandFailedError, LandRefusedError
from gitxact.leases import records as leases
from gitxact.tx import checks
from gitxact.tx.journal import Owner
from gitxact.util import faults

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

_POLL = 0.2


@dataclass(frozen=True)
class QueueView:
    """Where a request stands, for a progress line: ``position`` 0 means it is being served."""

    position: int
    waiting: int
    serving: tuple[str, ...]
    step: str | None


Progress = Callable[[QueueView], None]


class LandBlockedError(GitxactError):
    """The worktree that has the target checked out cannot follow it: refused (exit 3)."""

    exit_code = EXIT_REFUSED


class _Moved(Exception):
    """The target moved between build and move: build again from its new tip."""


def land(
    repo: Repo,
    *,
    onto: str,
    branch: str | None = None,
    remote: str | None = None,
    check: str | None = None,
    shell: bool = False,
    check_timeout: float | None = None,
    strategy: Strategy = "rebase",
    batch: int = 1,
    retries: int = 5,
    timeout: float | None = None,
    progress: Progress | None = None,
    echo: checks.Echo | None = None,
) -> LandDoc:
    """Land *branch* (default: the agent's leased branch, else the one checked out here) onto *onto*.

    Returns the outcome when it landed; raises :class:`LandRefusedError` (exit 3) when a
    conflict or the check refused it, :class:`LandFailedError` (exit 1) when it could not
    be done, :class:`~gitxact.errors.LockTimeoutError` (exit 75) when its turn did not
    come within *timeout*. The target never moved in any of those cases.
    """
    target = candidate.check_target(onto)
    if strategy not in ("rebase", "merge"):
        raise UsageError(f"unknown strategy {strategy!r}", hint="use rebase or merge")
    if batch < 1 or retries < 0:
        raise UsageError("--batch must be at least 1 and --retries at least 0")
    name = branch if branch is not None else default_branch(repo)
    name = name.removeprefix("refs/heads/")
    if remote is None and name == target:
        raise UsageError(f"cannot land {target!r} onto itself")
    tip = refs.read(repo.layout.common_dir, f"refs/heads/{name}") if name and not name.startswith("-") else None
    if tip is None:
        raise UsageError(f"there is no branch {name!r} to land", hint="name a local branch")
    spec = None
    if check is not None:
        limit = repo.settings.check_timeout if check_timeout is None else check_timeout
        spec = checks.parse(check, shell=shell, timeout=limit)
    queue = queue_name(target, candidate.remote_url(repo, remote) if remote is not None else None)
    lf = LandingFile(repo)
    started = time.monotonic()
    with lf.change() as state:
        request = Request(
            id=new_id("land"),
            seq=state.next_seq,
            queue=queue,
            target=target,
            remote=remote,
            branch=name,
            tip=tip,
            strategy=strategy,
            check=CheckRecord(argv=spec.argv, display=spec.display, shell=spec.shell, timeout=spec.timeout)
            if spec
            else None,
            batch=batch,
            retries=retries,
            owner=Owner.current(repo.agent, "land"),
            filed=time.time(),
        )
        state.next_seq += 1
        state.requests.append(request)
        position = len(state.pending(queue))
    lander = _Lander(repo, lf, queue, echo)
    waited = 0.0
    with _watching(lf, request.id, queue, progress):
        try:
            with repo.locks.resource(queue, timeout):
                waited = time.monotonic() - started
                lander.serve_until(request.id)
        except LockTimeoutError:
            if _withdraw(lf, request.id, "its turn did not come in time", code=75):
                raise
            _await(lf, request.id)  # already taken up by a lander ahead: its outcome is on the way
        except BaseException as exc:
            reason = exc.message if isinstance(exc, GitxactError) else f"interrupted ({type(exc).__name__})"
            _withdraw(lf, request.id, reason, code=getattr(exc, "exit_code", 1))
            raise
    final = lf.peek().request(request.id)
    if final is None:  # pragma: no cover - finished requests stay in the history
        raise OperationFailedError(f"request {request.id} vanished from the landing queue")
    doc = LandDoc.of(final, position=position, waited=waited, seconds=time.monotonic() - started)
    _raise_unless_landed(doc, final)
    return doc


def default_branch(repo: Repo) -> str:
    """The calling agent's leased branch, else the branch checked out where this runs."""
    if repo.agent is not None:
        lease = leases.for_agent(repo, repo.agent)
        if lease is not None:
            return lease.branch
    if repo.layout.worktree is not None:
        result = repo.git(["symbolic-ref", "-q", "HEAD"], cwd=repo.layout.worktree, check=False)
        if result.ok and result.stdout.strip():
            return result.stdout.strip()
    raise UsageError(
        "no branch to land: none is leased to this agent and HEAD is detached here",
        hint="name the branch: gitxact land BRANCH --onto TARGET",
    )


def _raise_unless_landed(doc: LandDoc, request: Request) -> None:
    if request.state == "landed":
        return
    code = request.outcome.code if request.outcome else 1
    reason = doc.reason or f"the request was {request.state}"
    if code == EXIT_REFUSED:
        hint = f"the check's log: {doc.check_log}" if doc.check_log else None
        raise LandRefusedError(f"{doc.branch} was not landed onto {doc.target}: {reason}", doc, hint=hint)
    if code == EXIT_USAGE:
        raise UsageError(f"{doc.branch} was not landed onto {doc.target}: {reason}")
    if code == 75:
        raise LockTimeoutError(f"{doc.branch} was not landed onto {doc.target}: {reason}")
    raise LandFailedError(f"{doc.branch} was not landed onto {doc.target}: {reason}", doc)


def _withdraw(lf: LandingFile, request_id: str, reason: str, *, code: int) -> bool:
    """Withdraw a request nobody has taken up yet; False if a lander already has it."""
    with lf.change() as state:
        request = state.request(request_id)
        if request is None or request.state != "pending":
            return False
        state.finish(request, "withdrawn", Outcome(reason=reason, code=code))
        return True


def _await(lf: LandingFile, request_id: str) -> None:
    """Wait for a lander that took our request up to finish it (or to be found dead)."""
    while True:
        state = lf.peek()
        request = state.request(request_id)
        if request is None or request.state in FINAL:
            return
        works = [w for w in state.work if request_id in w.requests]
        if works and all(w.owner.is_dead() for w in works):
            raise OperationFailedError(
                f"the process landing {request.branch} died", hint="run `gitxact recover`, then land it again"
            )
        time.sleep(_POLL)


@contextlib.contextmanager
def _watching(lf: LandingFile, request_id: str, queue: str, progress: Progress | None) -> Iterator[None]:
    """Tell *progress* where the request stands whenever that changes (read without locks)."""
    if progress is None:
        yield
        return
    stop = threading.Event()

    def watch() -> None:
        last: QueueView | None = None
        while not stop.wait(_POLL):
            try:
                view = view_of(lf, request_id, queue)
            except GitxactError:
                continue
            if view is not None and view != last:
                last = view
                progress(view)

    thread = threading.Thread(target=watch, name="land-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def view_of(lf: LandingFile, request_id: str, queue: str) -> QueueView | None:
    state = lf.peek()
    request = state.request(request_id)
    if request is None or request.state in FINAL:
        return None
    pending = state.pending(queue)
    serving = tuple(r.branch for r in state.requests if r.queue == queue and r.state == "serving")
    work = state.work_of(queue)
    position = 0 if request.state == "serving" else 1 + [r.id for r in pending].index(request_id)
    return QueueView(position=position, waiting=len(pending), serving=serving, step=work[0].phase if work else None)


class _Lander:
    """The holder of one queue's lock, serving its oldest requests until ours is done."""

    def __init__(self, repo: Repo, lf: LandingFile, queue: str, echo: checks.Echo | None) -> None:
        self.repo = repo
        self.lf = lf
        self.queue = queue
        self.echo = echo

    def serve_until(self, request_id: str) -> None:
        while True:
            _actions, problems = recovery.settle_queue(self.repo, self.lf, self.queue)
            if problems:
                raise OperationFailedError(
                    "the queue holds a landing that could not be finished: " + "; ".join(problems),
                    hint="run `gitxact recover`",
                )
            group = self._claim(request_id)
            if group is None:
                return
            self._serve(group)

    def _claim(self, request_id: str) -> list[Request] | None:
        """The head of the queue, up to its batch size of requests that can share a check."""
        with self.lf.change() as state:
            mine = state.request(request_id)
            if mine is None or mine.state in FINAL:
                return None
            alive: list[Request] = []
            for request in state.pending(self.queue):
                if request.owner.is_dead():
                    state.finish(request, "withdrawn", Outcome(reason="its requester died before its turn", code=1))
                else:
                    alive.append(request)
            head = alive[0]
            group = [head]
            for request in alive[1:]:
                if len(group) >= head.batch or not head.same_run(request):
                    break
                group.append(request)
            now = time.time()
            for request in group:
                request.state = "serving"
                request.started = now
            return [r.model_copy(deep=True) for r in group]

    # -- one batch -----------------------------------------------------------------------------

    def _serve(self, group: list[Request]) -> None:
        """Land *group*, bisecting on a failing check until each culprit is refused alone."""
        try:
            failed = self._attempts(group)
        except GitxactError as exc:
            self._finish_all(
                group, "failed" if exc.exit_code != EXIT_REFUSED else "refused", exc.message, exc.exit_code
            )
            return
        if failed is None:
            return
        survivors, result = failed
        if len(survivors) == 1:
            self._refuse_check(survivors[0], result)
            return
        half = len(survivors) // 2
        self._serve(survivors[:half])
        self._serve(survivors[half:])

    def _attempts(self, group: list[Request]) -> tuple[list[Request], checks.CheckResult] | None:
        retries = group[0].retries
        for attempt in range(1, retries + 2):
            try:
                return self._attempt(group, attempt)
            except _Moved:
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

    def _attempt(self, group: list[Request], attempt: int) -> tuple[list[Request], checks.CheckResult] | None:
        """One build-check-move; returns the requests whose check failed together, if it did."""
        head = group[0]
        work_id = new_id("work")
        work = Work(
            id=work_id,
            queue=self.queue,
            target=head.target,
            remote=head.remote,
            requests=[r.id for r in group],
            phase="build",
            owner=Owner.current(self.repo.agent, "land"),
            started=time.time(),
            worktree=str(candidate.worktree_folder(self.repo, work_id)),
            fetch_ref=f"{candidate.FETCH_PREFIX}{work_id}" if head.remote is not None else None,
        )
        self._save(work)
        try:
            return self._build_check_move(work, group, attempt)
        except _Moved:
            self._drop(work)
            raise
        except BaseException as exc:
            reason = exc.message if isinstance(exc, GitxactError) else f"interrupted ({type(exc).__name__})"
            code = exc.exit_code if isinstance(exc, GitxactError) else 1
            try:
                recovery.finish_work(self.repo, self.lf, work, reason, code=code)
            except GitxactError as cleanup:
                with contextlib.suppress(GitxactError):
                    work.failed = f"{reason}; then {cleanup.message}"
                    self._save(work)
            if isinstance(exc, GitxactError):
                return None  # recorded on its requests; the queue moves on
            raise

    def _build_check_move(
        self, work: Work, group: list[Request], attempt: int
    ) -> tuple[list[Request], checks.CheckResult] | None:
        repo = self.repo
        head = group[0]
        wt = Path(work.worktree)
        base = candidate.read_target(repo, head.target, head.remote, work.fetch_ref)
        candidate.add_worktree(repo, wt, base, candidate.lock_reason(work.id, os.getpid()))
        faults.crashpoint("land-worktree-added")
        applied: list[Request] = []
        commits: dict[str, list[str]] = {}
        already: list[Request] = []
        for request in group:
            result = candidate.apply(
                repo, wt, request.tip, strategy=request.strategy, branch=request.branch, target=request.target
            )
            if result.conflicts:
                paths = ", ".join(result.conflicts)
                self._finish_one(
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
        tip = candidate.head(repo, wt)
        work.base = base
        work.candidate = tip
        if tip != base and head.check is not None:
            work.phase = "check"
            self._save(work)
            spec = checks.CheckSpec(head.check.argv, head.check.display, head.check.shell, head.check.timeout)
            verdict = checks.run(spec, cwd=wt, log_dir=repo.log_dir(), label="land", echo=self.echo)
            if verdict.interrupted:
                raise OperationFailedError("the check was interrupted")
            if not verdict.passed:
                if len(applied) == 1:
                    self._finish_all(already, "landed", "already on the target", 0, landed_tip=base, already=True)
                    self._drop(work)
                    self._refuse_check(applied[0], verdict)
                    return None
                self._drop(work)
                return [*applied, *already], verdict
        ids = [r.id for r in group]
        outcomes = {
            r.id: Outcome(
                reason="landed" if r in applied else "already on the target",
                landed_tip=tip,
                commits=commits.get(r.id, []),
                already=r in already,
                attempts=attempt,
                batch=ids,
                served_by=os.getpid(),
            )
            for r in [*applied, *already]
        }
        work.landed = outcomes
        if tip != base:
            self._move(work, head, base, tip)
        work.phase = "cleanup"
        self._save(work)
        self._drop(work, outcomes=work.landed)
        return None

    def _move(self, work: Work, head: Request, base: str, tip: str) -> None:
        repo = self.repo
        message = f"gitxact land: {', '.join(work.requests)}"
        checked = candidate.checked_out_at(repo, head.target) if head.remote is None else None
        work.phase = "move"
        work.checked_out = str(checked) if checked is not None else None
        self._save(work)
        try:
            if head.remote is not None:
                candidate.move_remote(repo, head.remote, head.target, base, tip)
            elif checked is None:
                candidate.move_local(repo, head.target, base, tip, message)
            else:
                warning = candidate.holding_worktree(
                    repo,
                    candidate.worktree_id_of(repo, checked),
                    lambda: self._move_checked_out(head.target, checked, base, tip, message),
                )
                if warning:
                    for outcome in work.landed.values():
                        outcome.warning = warning
        except candidate.TargetMovedError as exc:
            raise _Moved from exc
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

    def _save(self, work: Work) -> None:
        with self.lf.change() as state:
            state.work = [w for w in state.work if w.id != work.id] + [work]

    def _drop(self, work: Work, outcomes: dict[str, Outcome] | None = None) -> None:
        """Remove the temporary worktree and fetched ref, then the step (recording *outcomes*)."""
        candidate.remove_worktree(self.repo, Path(work.worktree))
        candidate.delete_fetch_ref(self.repo, work.fetch_ref)
        with self.lf.change() as state:
            for request_id, outcome in (outcomes or {}).items():
                request = state.request(request_id)
                if request is not None and request.state not in FINAL:
                    state.finish(request, "landed", outcome)
            state.work = [w for w in state.work if w.id != work.id]

    def _finish_one(self, request: Request, final: RequestState, outcome: Outcome) -> None:
        outcome.served_by = os.getpid()
        with self.lf.change() as state:
            current = state.request(request.id)
            if current is not None and current.state not in FINAL:
                state.finish(current, final, outcome)

    def _finish_all(
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
            self._finish_one(request, final, Outcome(reason=reason, code=code, landed_tip=landed_tip, already=already))

    def _refuse_check(self, request: Request, result: checks.CheckResult) -> None:
        self._finish_one(
            request,
            "refused",
            Outcome(
                reason=f"the check `{result.spec.display}` {result.describe()} on it (its log: {result.log})",
                check_log=str(result.log),
                code=EXIT_REFUSED,
            ),
        )
