"""``gitxact stats``: the event record summed up, and the operator's targets checked against it.

Everything is computed from :mod:`gitxact.util.eventlog` at the moment it is asked
(nothing is kept elsewhere), so the figures cover exactly the window the record still
holds (see its :data:`~gitxact.util.eventlog.LIMIT`), or the part of it after ``since``.

The targets come from the risk assessment gitxact answers: an average lock hold under
100 ms, 99.9% of lock acquisitions succeeding (a wait that ran out is a failure; a
guard's refusal is not: it is the lock layer's caller saying no on purpose, counted on
its own), and recovery (one ``gitxact recover``) under five minutes.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.util.eventlog import EventLog

#: The kinds of event and what each carries besides ``t``, ``ev``, ``pid``, ``agent``.
KINDS = {
    "lock": "lock, mode, wait, hold (seconds): one acquisition that queued, at its release",
    "timeout": "lock, mode, waited: a wait that ran out (LockTimeoutError)",
    "refusal": "by (gx, gc, land), what: a guard refused on purpose (a land onto another agent's lease;"
    " a landing its check or a conflict refused is a land event)",
    "gx": "cmd, code, secs: a git command run under locks by gx",
    "tx": "op (begin, commit, done), tx: a transaction opened or closed keeping its commits",
    "rollback": "op (rollback, green, refactor, abort), tx, to: a transaction restored to a savepoint",
    "reap": "lease, action: a lease ended by reap or recover",
    "recover": "ok, actions, secs: one `gitxact recover`",
    "land": "branch, target, outcome, secs, waited, attempts (checked builds), why: one branch through the queue",
}

#: Where the targets stand; ``stats`` and ``watch`` say met / not met against these.
HOLD_MEAN_GOAL = 0.100
SUCCESS_GOAL = 0.999
RECOVERY_GOAL = 300.0
#: The agent column for events of a process that named no agent.
NO_AGENT = "-"


class Figures(BaseModel):
    """One distribution, in seconds (nearest-rank percentiles)."""

    p50: float = 0.0
    p95: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    sum: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> Figures:
        if not values:
            return cls()
        ordered = sorted(values)

        def rank(q: float) -> float:
            return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

        total = math.fsum(ordered)
        return cls(
            p50=rank(0.50),
            p95=rank(0.95),
            p99=rank(0.99),
            max=ordered[-1],
            mean=total / len(ordered),
            sum=total,
        )


class LockFigures(BaseModel):
    """One lock: acquisitions that queued (granted), waits that ran out, and their times."""

    granted: int = 0
    timeouts: int = 0
    wait: Figures = Field(default_factory=Figures)
    hold: Figures = Field(default_factory=Figures)


class AgentCounts(BaseModel):
    """What one agent did, by its events (``-``: processes that named no agent)."""

    acquisitions: int = 0
    timeouts: int = 0
    gx_commands: int = 0
    #: ``gx commit`` runs that git finished with exit code 0.
    commits: int = 0
    transactions: int = 0
    rollbacks: int = 0
    lands: int = 0
    lands_refused: int = 0
    refusals: int = 0


class Recoveries(BaseModel):
    count: int = 0
    failed: int = 0
    #: Leases ended by ``worktree reap`` or ``recover`` (their owner died or their TTL passed).
    reaps: int = 0
    seconds: Figures = Field(default_factory=Figures)
    last: float | None = None


class QueueFigures(BaseModel):
    """The landing queue, from its requesters' land events (local and PostgreSQL queues alike)."""

    landed: int = 0
    not_landed: int = 0
    #: Seconds a request waited for a lander to take it up.
    waited: Figures = Field(default_factory=Figures)
    #: Candidate builds checked, over the requests that landed with a check (a target that
    #: moved meanwhile means another build; a batch's builds count for each of its requests).
    checks_per_landed: float | None = None
    #: Requests not landed, by why: conflict, check, moved (the target kept moving), other.
    refusals: dict[str, int] = Field(default_factory=dict)


class Target(BaseModel):
    """One operator target: ``met`` is ``None`` when the window holds nothing to judge it by."""

    name: str
    goal: str
    value: float | None
    shown: str
    met: bool | None


class StatsDoc(Document):
    """``gitxact stats --json``."""

    since: float | None
    now: float
    #: The first and last event in the window (``None`` when it is empty).
    first: float | None
    last: float | None
    events: int
    locks: dict[str, LockFigures]
    all_locks: LockFigures
    #: Acquisitions granted / (granted + timed out); ``None`` with neither.
    success_rate: float | None
    refusals: dict[str, int]
    agents: dict[str, AgentCounts]
    recoveries: Recoveries
    queue: QueueFigures = Field(default_factory=QueueFigures)
    targets: list[Target]

    @property
    def targets_met(self) -> bool:
        return all(t.met is not False for t in self.targets)


def collect(log: EventLog, since: float | None = None, *, now: float | None = None) -> StatsDoc:
    """Sum up the record (the events at or after *since*) as of *now*."""
    return summarize(log.read(since), since=since, now=time.time() if now is None else now)


def summarize(events: list[dict[str, Any]], *, since: float | None, now: float) -> StatsDoc:
    per_lock: dict[str, tuple[list[float], list[float]]] = {}
    timeouts: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    agents: dict[str, AgentCounts] = {}
    recover_secs: list[float] = []
    recoveries = Recoveries()
    queue = QueueFigures()
    queue_waits: list[float] = []
    queue_why: Counter[str] = Counter()
    checked_builds = checked_lands = 0
    for event in events:
        kind = event.get("ev")
        counts = agents.setdefault(str(event.get("agent") or NO_AGENT), AgentCounts())
        if kind == "lock":
            waits, holds = per_lock.setdefault(str(event.get("lock")), ([], []))
            waits.append(_number(event.get("wait")))
            holds.append(_number(event.get("hold")))
            counts.acquisitions += 1
        elif kind == "timeout":
            timeouts[str(event.get("lock"))] += 1
            counts.timeouts += 1
        elif kind == "refusal":
            refusals[str(event.get("by"))] += 1
            counts.refusals += 1
        elif kind == "gx":
            counts.gx_commands += 1
            counts.commits += event.get("cmd") == "commit" and event.get("code") == 0
        elif kind == "tx" and event.get("op") == "begin":
            counts.transactions += 1
        elif kind == "rollback":
            counts.rollbacks += 1
        elif kind == "land":
            landed = event.get("outcome") == "landed"
            queue_waits.append(_number(event.get("waited")))
            why = event.get("why")
            if landed:
                queue.landed += 1
                checked_builds += int(_number(event.get("attempts")))
                checked_lands += _number(event.get("attempts")) > 0
            else:
                queue.not_landed += 1
                queue_why[str(why or "other")] += 1
            counts.lands += landed
            counts.lands_refused += event.get("outcome") == "refused"
            refusals["land"] += event.get("outcome") == "refused"
        elif kind == "reap":
            recoveries.reaps += 1
        elif kind == "recover":
            recover_secs.append(_number(event.get("secs")))
            recoveries.failed += event.get("ok") is False
            recoveries.last = _number(event.get("t"))
    queue.waited = Figures.of(queue_waits)
    queue.checks_per_landed = checked_builds / checked_lands if checked_lands else None
    queue.refusals = dict(sorted(queue_why.items()))
    recoveries.count = len(recover_secs)
    recoveries.seconds = Figures.of(recover_secs)
    locks = {
        name: LockFigures(granted=len(waits), timeouts=timeouts[name], wait=Figures.of(waits), hold=Figures.of(holds))
        for name, (waits, holds) in sorted(per_lock.items())
    }
    for name in sorted(set(timeouts) - set(locks)):
        locks[name] = LockFigures(timeouts=timeouts[name])
    all_waits = [w for waits, _ in per_lock.values() for w in waits]
    all_holds = [h for _, holds in per_lock.values() for h in holds]
    overall = LockFigures(
        granted=len(all_waits),
        timeouts=sum(timeouts.values()),
        wait=Figures.of(all_waits),
        hold=Figures.of(all_holds),
    )
    tried = overall.granted + overall.timeouts
    rate = overall.granted / tried if tried else None
    return StatsDoc(
        since=since,
        now=now,
        first=_number(events[0].get("t")) if events else None,
        last=_number(events[-1].get("t")) if events else None,
        events=len(events),
        locks=locks,
        all_locks=overall,
        success_rate=rate,
        refusals=dict(sorted((k, v) for k, v in refusals.items() if v)),
        agents=dict(sorted((k, v) for k, v in agents.items() if v != AgentCounts())),
        recoveries=recoveries,
        queue=queue,
        targets=targets(overall, rate, recoveries),
    )


def targets(overall: LockFigures, rate: float | None, recoveries: Recoveries) -> list[Target]:
    mean_hold = overall.hold.mean if overall.granted else None
    slowest = recoveries.seconds.max if recoveries.count else None
    return [
        Target(
            name="average lock hold",
            goal=f"< {HOLD_MEAN_GOAL * 1000:.0f} ms",
            value=mean_hold,
            shown="no locks recorded" if mean_hold is None else f"{mean_hold * 1000:.1f} ms",
            met=None if mean_hold is None else mean_hold < HOLD_MEAN_GOAL,
        ),
        Target(
            name="lock acquisition success",
            goal=f">= {SUCCESS_GOAL * 100:.1f}%",
            value=rate,
            shown="no acquisitions recorded" if rate is None else f"{rate * 100:.2f}%",
            met=None if rate is None else rate >= SUCCESS_GOAL,
        ),
        Target(
            name="recovery time",
            goal=f"< {RECOVERY_GOAL / 60:.0f} min",
            value=slowest,
            shown="no recovery recorded" if slowest is None else f"{slowest:.1f} s (slowest)",
            met=None if slowest is None else slowest < RECOVERY_GOAL,
        ),
    ]


def _number(value: Any) -> float:
    """A number from an event; anything else (a hand-edited line) counts as 0."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
