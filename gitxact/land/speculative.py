"""A speculative round (``land --parallel N``): the next N candidates built and checked at once.

The queue's holder (:class:`gitxact.land.lander.Lander`) takes up to N candidates from the
head of the queue (each one request, or a batch of them). Candidate 1 is built on the
target's tip, candidate k on candidate k-1, each in a temporary worktree of its own with a
``Work`` record of its own, and all their checks run at once (:func:`gitxact.tx.checks.run_all`).
Then, strictly in queue order, candidate k lands (the target moves from candidate k-1 to
candidate k, compare-and-swap) only if its check passed and every candidate before it landed.
At the first one that does not land:

* its check failed: a lone request is refused, as without ``--parallel``; a batch is
  bisected (serially, on the target as it now is: where the candidate was built);
* the target moved outside the queue: its requests go back to the queue (bounded by
  their ``--retries``), to be built again on the new tip;

and every later candidate is discarded: its requests go back to ``pending`` in their places
(their ``seq`` is unchanged) and the next round builds them on the target as it then is and
checks them again. A conflict or an "already on the target" found in candidate k > 1 is
against candidates that may not land; it is decided when k's turn comes, once every
earlier candidate has landed.

Crash safety is the serial lander's: each candidate's step is written before it is taken;
only one candidate is ever at the ``move`` step (the next moves only once the previous one is
recorded landed and its record dropped), so the table of :mod:`gitxact.land.recovery`
applies to each record as it stands: ``build``/``check``, its requests fail, nothing moved;
``move``, they landed exactly when the target is at that candidate; ``cleanup``, they landed.
A request put back to ``pending`` has no record: the next lander serves it.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from gitxact.errors import EXIT_REFUSED, GitxactError, OperationFailedError
from gitxact.land import candidate, carry, recovery
from gitxact.land.records import Outcome, Request, Work
from gitxact.tx import checks
from gitxact.util import faults

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.land.records import LandingFile, RequestState


class Lander(Protocol):
    """What a round asks of the queue's holder (:class:`gitxact.land.lander.Lander`, which
    calls :func:`serve_round`): its steps, so a round takes them as a serial landing does."""

    repo: Repo
    lf: LandingFile
    #: How often each request found the target moved outside the queue, across rounds.
    moves: dict[str, int]

    def new_work(self, group: list[Request], *, reads_target: bool = True) -> Work: ...
    def save(self, work: Work) -> None: ...
    def drop(self, work: Work, outcomes: dict[str, Outcome] | None = None) -> None: ...
    def move(self, work: Work, target: str, base: str, tip: str) -> None: ...
    def bisect(self, survivors: list[Request], result: checks.CheckResult) -> None: ...
    def refuse_check(self, request: Request, result: checks.CheckResult) -> None: ...
    def finish_one(self, request: Request, final: RequestState, outcome: Outcome) -> None: ...
    def finish_all(
        self,
        group: list[Request],
        final: RequestState,
        reason: str,
        code: int,
        *,
        landed_tip: str | None = None,
        already: bool = False,
    ) -> None: ...


@dataclass
class _Slot:
    """One candidate of the round: its record, its requests and what building it found."""

    work: Work
    group: list[Request]
    applied: list[Request] = field(default_factory=list)
    already: list[Request] = field(default_factory=list)
    conflicts: dict[str, list[str]] = field(default_factory=dict)  # request id -> paths
    applies: dict[str, candidate.Applied] = field(default_factory=dict)  # request id -> what applying it gave
    verdict: checks.CheckResult | None = None
    done: bool = False  # its record is dropped or finished

    @property
    def needs_check(self) -> bool:
        return self.work.candidate != self.work.base and self.group[0].check is not None


def serve_round(lander: Lander, groups: list[list[Request]]) -> None:
    """Build, check at once, then land in order (see the module's docstring); every request of
    *groups* ends final or back in the queue."""
    slots: list[_Slot] = []
    try:
        _build_all(lander, groups, slots)
        _check_all(lander, slots)
    except BaseException as exc:
        _abandon(lander, groups, slots, exc)
        if isinstance(exc, GitxactError):
            return
        raise
    for index, slot in enumerate(slots):
        try:
            landed = _land(lander, slot, later=slots[index + 1 :])
        except BaseException as exc:
            _requeue(lander, slots[index + 1 :])
            _abandon(lander, [], [slot], exc)
            if isinstance(exc, GitxactError):
                return
            raise
        if not landed:
            return
        faults.crashpoint("land-candidate-landed")


# -- building and checking ---------------------------------------------------------------------


def _build_all(lander: Lander, groups: list[list[Request]], slots: list[_Slot]) -> None:
    repo = lander.repo
    head = groups[0][0]
    base: str | None = None
    for number, group in enumerate(groups):
        # Only the first candidate reads the target; the others build on the one before.
        work = lander.new_work(group, reads_target=number == 0)
        lander.save(work)
        slot = _Slot(work, group)
        slots.append(slot)
        if base is None:
            base = candidate.read_target(repo, head.target, work.remote, work.fetch_ref)
            if lander.lf.shared and work.remote is not None:
                carry.fetch_missing(repo, work.remote, {r.id: r.tip for g in groups for r in g})
        wt = Path(work.worktree)
        candidate.add_worktree(repo, wt, base, candidate.lock_reason(work.id, os.getpid()))
        for request in group:
            result = candidate.apply(
                repo, wt, request.tip, strategy=request.strategy, branch=request.branch, target=request.target
            )
            slot.applies[request.id] = result
            if result.conflicts:
                slot.conflicts[request.id] = result.conflicts
            elif result.already:
                slot.already.append(request)
            else:
                slot.applied.append(request)
        work.base = base
        work.candidate = base = candidate.head(repo, wt)
        if slot.needs_check:
            work.phase = "check"
        lander.save(work)
    faults.crashpoint("land-candidates-built")


def _check_all(lander: Lander, slots: list[_Slot]) -> None:
    to_check = [slot for slot in slots if slot.needs_check]
    if not to_check:
        return
    record = to_check[0].group[0].check
    assert record is not None  # noqa: S101 - needs_check says so
    spec = checks.CheckSpec(record.argv, record.display, record.shell, record.timeout)
    verdicts = checks.run_all(
        [(spec, Path(slot.work.worktree)) for slot in to_check], log_dir=lander.repo.log_dir(), label="land"
    )
    if any(v.interrupted for v in verdicts):
        raise OperationFailedError("the check was interrupted")
    for slot, verdict in zip(to_check, verdicts, strict=True):
        slot.verdict = verdict
    faults.crashpoint("land-checks-done")


# -- landing in order --------------------------------------------------------------------------


def _land(lander: Lander, slot: _Slot, *, later: list[_Slot]) -> bool:
    """Land *slot* (every candidate before it landed); False when the round stops here."""
    work = slot.work
    head = slot.group[0]
    for request in slot.group:
        paths = slot.conflicts.get(request.id)
        if paths:
            reason = f"it conflicts with {head.target} in: {', '.join(paths)}"
            lander.finish_one(request, "refused", Outcome(reason=reason, conflicts=paths, code=EXIT_REFUSED))
            work.requests.remove(request.id)
    verdict = slot.verdict
    if verdict is not None and not verdict.passed:
        _requeue(lander, later)
        slot.done = True
        if len(slot.applied) == 1:
            lander.finish_all(slot.already, "landed", "already on the target", 0, landed_tip=work.base, already=True)
            lander.drop(work)
            lander.refuse_check(slot.applied[0], verdict)
        else:
            lander.drop(work)
            lander.bisect([*slot.applied, *slot.already], verdict)
        return False
    assert work.base is not None  # noqa: S101 - written when the candidate was built
    assert work.candidate is not None  # noqa: S101 - as above
    ids = [r.id for r in slot.group]
    work.landed = {
        r.id: Outcome(
            reason="landed" if r in slot.applied else "already on the target",
            landed_tip=work.candidate,
            commits=slot.applies[r.id].commits,
            landed_as=slot.applies[r.id].landed_as,
            already=r in slot.already,
            attempts=r.requeued + 1,
            batch=ids,
            served_by=os.getpid(),
        )
        for r in [*slot.applied, *slot.already]
    }
    if work.candidate != work.base:
        try:
            lander.move(work, head.target, work.base, work.candidate)
        except candidate.MovedError:
            _requeue(lander, later)
            _moved(lander, slot)
            return False
    work.phase = "cleanup"
    lander.save(work)
    lander.drop(work, outcomes=work.landed)
    slot.done = True
    return True


def _moved(lander: Lander, slot: _Slot) -> None:
    """The target moved outside the queue under *slot*: back to the queue, within each one's retries."""
    for request in slot.group:
        lander.moves[request.id] = lander.moves.get(request.id, 0) + 1
    tired = [r for r in slot.group if lander.moves[r.id] > r.retries]
    _requeue(lander, [slot], keep={r.id for r in tired})
    for request in tired:
        reason = f"{request.target} kept moving outside the queue: gave up after {request.retries + 1} attempts"
        lander.finish_one(request, "failed", Outcome(reason=reason, code=1))


def _requeue(lander: Lander, slots: list[_Slot], keep: set[str] | frozenset[str] = frozenset()) -> None:
    """Discard *slots*' candidates and put their requests back in the queue (but *keep*), in one step."""
    live = [slot for slot in slots if not slot.done]
    for slot in live:
        candidate.remove_worktree(lander.repo, Path(slot.work.worktree))
        candidate.delete_fetch_ref(lander.repo, slot.work.fetch_ref)
    if not live:
        return
    ids = {slot.work.id for slot in live}
    with lander.lf.change() as state:
        for request_id in (r for slot in live for r in slot.work.requests if r not in keep):
            request = state.request(request_id)
            if request is not None and request.state == "serving":
                request.state = "pending"
                request.requeued += 1
        state.work = [w for w in state.work if w.id not in ids]
    for slot in live:
        slot.done = True


def _abandon(lander: Lander, groups: list[list[Request]], slots: list[_Slot], exc: BaseException) -> None:
    """An error: every candidate made so far ends as recovery would end it; the requests of
    *groups* no candidate was made for yet go back to the queue."""
    reason = exc.message if isinstance(exc, GitxactError) else f"interrupted ({type(exc).__name__})"
    code = exc.exit_code if isinstance(exc, GitxactError) else 1
    for slot in slots:
        if slot.done:
            continue
        slot.done = True
        try:
            recovery.finish_work(lander.repo, lander.lf, slot.work, reason, code=code)
        except GitxactError as cleanup:
            with contextlib.suppress(GitxactError):
                slot.work.failed = f"{reason}; then {cleanup.message}"
                lander.save(slot.work)
    made = {r.id for slot in slots for r in slot.group}
    unbuilt = [r.id for group in groups for r in group if r.id not in made]
    if unbuilt:
        with lander.lf.change() as state:
            for request_id in unbuilt:
                request = state.request(request_id)
                if request is not None and request.state == "serving":
                    request.state = "pending"
