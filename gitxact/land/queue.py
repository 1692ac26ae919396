"""``gitxact land``: a first-come, first-served landing queue per target, transactional.

A request is filed in ``landing.json`` (its ``seq`` is its place), then waits for the
target's queue lock, the resource lock ``land.<target>`` whose FIFO tickets serve
landers in arrival order. Whoever holds that lock serves the *oldest* pending requests
of the queue, its own or not, so requests land exactly in the order they were filed,
and a batch (``--batch N``) is simply the head of the queue taken N at a time. A
requester whose request was served by another lander finds its outcome when its turn
comes (or, past its timeout, waits for the lander it was served by).

Serving is :mod:`gitxact.land.lander`'s: build, check and move in a private temporary
worktree, every step journaled first, the target moved by compare-and-swap only.

With PostgreSQL chosen, the requests are rows of a table and the queue lock a database
named lock, so one queue serves every clone of a remote target, whatever the host
(:mod:`gitxact.land.shared`); the flow here is the same on both backends.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitxact.backends.named import open_named_locks
from gitxact.errors import (
    EXIT_REFUSED,
    EXIT_USAGE,
    GitxactError,
    LockTimeoutError,
    OperationFailedError,
    UsageError,
)
from gitxact.git import refs
from gitxact.land import boundary, candidate, carry
from gitxact.land.lander import Lander
from gitxact.land.records import (
    FINAL,
    CheckRecord,
    LandingFile,
    Outcome,
    Request,
    Strategy,
    new_id,
)
from gitxact.land.results import LandDoc, LandFailedError, LandRefusedError, QueueDoc, queue_doc
from gitxact.land.store import open_landing
from gitxact.leases import records as leases
from gitxact.tx import checks
from gitxact.tx.journal import Owner

if TYPE_CHECKING:
    from gitxact.backends.base import NamedLocks
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


def land(
    repo: Repo,
    *,
    onto: str,
    branch: str | None = None,
    remote: str | None = None,
    check: checks.Check | None = None,
    shell: bool = False,
    check_timeout: float | None = None,
    strategy: Strategy = "rebase",
    batch: int = 1,
    parallel: int | None = None,
    retries: int = 5,
    timeout: float | None = None,
    progress: Progress | None = None,
    echo: checks.Echo | None = None,
) -> LandDoc:
    """Land *branch* (default: the agent's leased branch, else the one checked out here) onto *onto*.

    Returns the outcome when it landed; raises :class:`LandRefusedError` (exit 3) when a
    conflict or the check refused it, :class:`LandFailedError` (exit 1) when it could not
    be done, :class:`~gitxact.errors.LockTimeoutError` (exit 75) when its turn did not
    come within *timeout*, :class:`~gitxact.land.boundary.LeasedByOtherError` (exit 3) when
    *onto* is leased to another agent. The target never moved in any of those cases.
    """
    target = candidate.check_target(onto)
    if strategy not in ("rebase", "merge"):
        raise UsageError(f"unknown strategy {strategy!r}", hint="use rebase or merge")
    if parallel is None:
        parallel = repo.settings.land_parallel
    if batch < 1 or parallel < 1 or retries < 0:
        raise UsageError("--batch and --parallel must be at least 1 and --retries at least 0")
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
    url = candidate.remote_url(repo, remote) if remote is not None else None
    if url is None or boundary.same_repository(repo, url):
        boundary.check_target(repo, target)  # before anything is queued: never another agent's leased branch
    lf = open_landing(repo)
    try:
        locks = open_named_locks(repo)
        try:
            fields: dict[str, Any] = {"target": target, "remote": remote, "branch": name, "tip": tip}
            fields |= {"strategy": strategy, "batch": batch, "parallel": parallel, "retries": retries}
            doc, final = _file_and_wait(
                repo,
                lf,
                locks,
                queue=lf.queue_of(target, url),
                fields=fields,
                spec=spec,
                timeout=timeout,
                progress=progress,
                echo=echo,
            )
        finally:
            locks.close()
    finally:
        lf.close()
    repo.locks.events.emit(
        "land",
        repo.attribution,
        branch=name,
        target=target,
        outcome=doc.state,
        secs=doc.seconds,
        waited=doc.waited,
        attempts=doc.attempts if spec is not None else 0,
        why=refusal_kind(doc),
    )
    if doc.conflicts:
        from gitxact.land.foresight import explain_conflict

        doc = explain_conflict(repo, doc)
    _raise_unless_landed(doc, final)
    return doc


def _file_and_wait(
    repo: Repo,
    lf: LandingFile,
    locks: NamedLocks,
    *,
    queue: str,
    fields: dict[str, Any],
    spec: checks.CheckSpec | None,
    timeout: float | None,
    progress: Progress | None,
    echo: checks.Echo | None,
) -> tuple[LandDoc, Request]:
    """File the request, wait for the queue's lock and serve (or find it served); its outcome."""
    started = time.monotonic()
    request_id = new_id("land")
    # On the shared queue another host's lander may serve it: its commits go where that one can fetch them.
    carried = fields["remote"] if lf.shared and fields["remote"] is not None else None
    if carried is not None:
        carry.push_request(repo, carried, fields["tip"], request_id)
    try:
        with lf.change() as state:
            request = Request(
                id=request_id,
                seq=state.next_seq,
                queue=queue,
                check=CheckRecord(argv=spec.argv, display=spec.display, shell=spec.shell, timeout=spec.timeout)
                if spec
                else None,
                owner=Owner.current(repo.agent, "land"),
                filed=time.time(),
                **fields,
            )
            state.next_seq += 1
            state.requests.append(request)
            position = len(state.pending(queue))
        lander = Lander(repo, lf, queue, echo, remote=fields["remote"])
        waited = 0.0
        with _watching(lf, request.id, queue, progress):
            try:
                with locks.hold(queue, timeout=timeout) as grant:
                    waited = time.monotonic() - started
                    lf.holding(getattr(grant, "session", None))
                    lander.serve_until(request.id)
            except LockTimeoutError:
                if _withdraw(lf, request.id, "its turn did not come in time", code=75):
                    raise
                # Already taken up by a lander ahead: its outcome is on the way, unless a
                # speculative round put it back in the queue (an earlier candidate failed).
                # On PostgreSQL that lander may be on another host: the lock is free once it
                # finished or died, and whoever holds it then settles what a dead one left.
                if lf.shared or not _await(lf, request.id):
                    with locks.hold(queue, timeout=-1) as grant:
                        lf.holding(getattr(grant, "session", None))
                        lander.serve_until(request.id)
            except BaseException as exc:
                reason = exc.message if isinstance(exc, GitxactError) else f"interrupted ({type(exc).__name__})"
                _withdraw(lf, request.id, reason, code=getattr(exc, "exit_code", 1))
                raise
        final = lf.find(request.id)
    finally:
        if carried is not None:
            carry.drop_request(repo, carried, request_id)
    if final is None:  # pragma: no cover - finished requests stay in the history
        raise OperationFailedError(f"request {request_id} vanished from the landing queue")
    return LandDoc.of(final, position=position, waited=waited, seconds=time.monotonic() - started), final


def status(repo: Repo) -> QueueDoc:
    """``land --status``: every queue of this backend (on PostgreSQL, the fleet's) and its requests.

    Each open request of a local target says what its tip would conflict on with the
    target now (a remote target's tip is not fetched for a status).
    """
    lf = open_landing(repo)
    try:
        doc = queue_doc(lf.peek())
    finally:
        lf.close()
    from gitxact.land.foresight import MergeTrees

    merges = MergeTrees(repo)
    for queue in doc.queues:
        target_tip = refs.read(repo.layout.common_dir, f"refs/heads/{queue.target}") if queue.remote is None else None
        if target_tip is None:
            continue
        for item in queue.serving + queue.waiting:
            if _has(repo, item.tip):
                item.conflicts = merges.conflicts(target_tip, item.tip)
    return doc


def _has(repo: Repo, commit: str) -> bool:
    """Whether *commit* is here (a request of another host's clone may not be)."""
    found = repo.git(["cat-file", "-e", f"{commit}^{{commit}}"], cwd=repo.layout.common_dir, check=False)
    return found.ok


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


def refusal_kind(doc: LandDoc) -> str | None:
    """Why a request did not land, in the words ``stats`` counts by: conflict, check, moved, other.

    ``moved``: the target kept moving outside the queue until the retries ran out (the
    lander's own words for it, :mod:`gitxact.land.lander`). ``None`` for a landed request.
    """
    if doc.state == "landed":
        return None
    if doc.conflicts:
        return "conflict"
    if doc.check_log:
        return "check"
    if "kept moving outside the queue" in doc.reason:
        return "moved"
    return "other"


def _raise_unless_landed(doc: LandDoc, request: Request) -> None:
    if request.state == "landed":
        return
    code = request.outcome.code if request.outcome else 1
    reason = doc.reason or f"the request was {request.state}"
    if code == EXIT_REFUSED:
        raise LandRefusedError(f"{doc.branch} was not landed onto {doc.target}: {reason}", doc, hint=_next_step(doc))
    if code == EXIT_USAGE:
        raise UsageError(f"{doc.branch} was not landed onto {doc.target}: {reason}")
    if code == 75:
        raise LockTimeoutError(f"{doc.branch} was not landed onto {doc.target}: {reason}")
    raise LandFailedError(f"{doc.branch} was not landed onto {doc.target}: {reason}", doc)


def _next_step(doc: LandDoc) -> str | None:
    """What to do about a refusal: for a conflict, the commands that update the branch and land again.

    A failing check's log is already named in the reason, so it is not repeated here.
    """
    if not doc.conflicts or len(doc.next_steps) < 3:
        return None
    *update, cont, again = doc.next_steps
    return (
        f"in {doc.branch}'s worktree: {' && '.join(update)}, resolve the conflicts "
        f"(gx add them), {cont}, then land it again: {again}"
    )


def _withdraw(lf: LandingFile, request_id: str, reason: str, *, code: int) -> bool:
    """Withdraw a request nobody has taken up yet; False if a lander already has it (or had it,
    and a speculative round put it back in the queue: it is seen through all the same)."""
    with lf.change() as state:
        request = state.request(request_id)
        if request is None or request.state != "pending" or request.requeued:
            return False
        state.finish(request, "withdrawn", Outcome(reason=reason, code=code))
        return True


def _await(lf: LandingFile, request_id: str) -> bool:
    """Wait for a lander that took our request up to finish it (or to be found dead); False
    when it put the request back in the queue instead (it is ours to wait for again)."""
    while True:
        state = lf.peek()
        request = state.request(request_id)
        if request is None or request.state in FINAL:
            return True
        if request.state == "pending":
            return False
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
        while not stop.wait(lf.poll):
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
