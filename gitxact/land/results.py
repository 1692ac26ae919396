"""``gitxact land --json`` and ``land --status --json``: what a landing did, and the queues."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.errors import OperationFailedError, RefusedError
from gitxact.land.records import Landing, Request


class LandDoc(Document):
    """One request and how it ended (``state``: landed, refused, failed or withdrawn)."""

    request: str
    state: str
    branch: str
    tip: str
    target: str
    remote: str | None
    strategy: str
    reason: str
    landed_tip: str | None = None
    commits: list[str] = Field(default_factory=list)
    #: Which of the branch's commits landed as which (original -> on the target).
    landed_as: dict[str, str] = Field(default_factory=dict)
    already: bool = False
    conflicts: list[str] = Field(default_factory=list)
    #: For a conflict: the target's commits since the branch's base that touched those paths,
    #: the other live leases whose branches change them too, and the commands that resolve it
    #: (update the branch, continue after resolving, land again), in order.
    conflict_commits: list[str] = Field(default_factory=list)
    conflict_leases: list[str] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    check_log: str | None = None
    attempts: int = 0
    batch: list[str] = Field(default_factory=list)
    served_by: int | None = None
    warning: str | None = None
    position: int = 0  # place in the queue when it was filed (1: next)
    waited: float = 0.0  # seconds in the queue before a lander (this process or another) took it up
    seconds: float = 0.0

    @classmethod
    def of(cls, request: Request, *, position: int, waited: float, seconds: float) -> LandDoc:
        outcome = request.outcome
        return cls(
            request=request.id,
            state=request.state,
            branch=request.branch,
            tip=request.tip,
            target=request.target,
            remote=request.remote,
            strategy=request.strategy,
            reason=outcome.reason if outcome else "",
            landed_tip=outcome.landed_tip if outcome else None,
            commits=outcome.commits if outcome else [],
            landed_as=outcome.landed_as if outcome else {},
            already=outcome.already if outcome else False,
            conflicts=outcome.conflicts if outcome else [],
            check_log=outcome.check_log if outcome else None,
            attempts=outcome.attempts if outcome else 0,
            batch=outcome.batch if outcome else [],
            served_by=outcome.served_by if outcome else None,
            warning=outcome.warning if outcome else None,
            position=position,
            waited=round(waited, 3),
            seconds=round(seconds, 3),
        )


class LandRefusedError(RefusedError):
    """The landing was refused (a conflict, a failing check): the target did not move (exit 3)."""

    def __init__(self, message: str, doc: LandDoc, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.doc = doc


class LandFailedError(OperationFailedError):
    """The landing could not be done (git failed, the target kept moving): nothing landed (exit 1)."""

    def __init__(self, message: str, doc: LandDoc, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.doc = doc


class RequestInfo(BaseModel):
    id: str
    seq: int
    state: str
    branch: str
    tip: str
    agent: str | None
    pid: int
    filed: float
    age: float
    reason: str | None = None
    #: A waiting or served request of a local target: the paths its tip would conflict on
    #: with the target's tip now (``git merge-tree``; empty: none). ``None``: not looked at.
    conflicts: list[str] | None = None


class QueueInfo(BaseModel):
    queue: str
    target: str
    remote: str | None
    serving: list[RequestInfo]
    waiting: list[RequestInfo]
    step: str | None  # the lander's step now: build, check, move, cleanup
    lander: str | None
    recent: list[RequestInfo]


class QueueDoc(Document):
    queues: list[QueueInfo]


def _info(request: Request, now: float) -> RequestInfo:
    return RequestInfo(
        id=request.id,
        seq=request.seq,
        state=request.state,
        branch=request.branch,
        tip=request.tip,
        agent=request.owner.agent,
        pid=request.owner.pid,
        filed=request.filed,
        age=round(now - request.filed, 3),
        reason=request.outcome.reason if request.outcome else None,
    )


def queue_doc(state: Landing, recent: int = 10) -> QueueDoc:
    now = time.time()
    queues: list[QueueInfo] = []
    for name in sorted({r.queue for r in state.requests} | {w.queue for w in state.work}):
        mine = sorted((r for r in state.requests if r.queue == name), key=lambda r: r.seq)
        work = state.work_of(name)
        sample = mine[-1] if mine else None
        done = [r for r in mine if r.state not in ("pending", "serving")]
        queues.append(
            QueueInfo(
                queue=name,
                target=sample.target if sample else work[0].target,
                remote=sample.remote if sample else work[0].remote,
                serving=[_info(r, now) for r in mine if r.state == "serving"],
                waiting=[_info(r, now) for r in mine if r.state == "pending"],
                step=work[0].phase if work else None,
                lander=work[0].owner.describe() if work else None,
                recent=[_info(r, now) for r in sorted(done, key=lambda r: r.finished or 0.0)[-recent:]],
            )
        )
    return QueueDoc(queues=queues)
