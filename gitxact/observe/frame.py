"""What one frame of ``gitxact watch`` shows, gathered fresh: status, the targets, recent events.

Kept apart from the drawing (``cli/watch_cmd.py``, the only place that imports rich)
so a test or another front end gets the same figures as plain data. Each frame reads
everything again from disk, like ``status`` (a holder that died is never shown).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gitxact.core.repo import Repo
from gitxact.health.status import StatusDoc, collect
from gitxact.observe.stats import StatsDoc
from gitxact.observe.stats import collect as collect_stats
from gitxact.tx.results import TxInfo
from gitxact.worktrees.lease_info import LeaseInfo

if TYPE_CHECKING:
    from gitxact.land.foresight import MergeTrees

#: Events listed under "recent events".
RECENT = 12


@dataclass
class Frame:
    at: float
    status: StatusDoc
    stats: StatsDoc
    recent: list[dict[str, Any]]

    def transaction_of(self, lease: LeaseInfo) -> TxInfo | None:
        """The open transaction in *lease*'s worktree (what its agent is in the middle of)."""
        return next((tx for tx in self.status.transactions if tx.worktree_id == lease.worktree_id), None)


def collect_frame(
    repo: Repo,
    *,
    recent: int = RECENT,
    since: float | None = None,
    conflicts_onto: str | None = None,
    merges: MergeTrees | None = None,
) -> Frame:
    """One frame; the targets are judged on the events after *since* (all that are kept by default).

    *conflicts_onto*: each lease's conflicts too, *merges* keeping what was merged for the
    frames before (only branches that moved cost a ``git merge-tree``)."""
    return Frame(
        at=time.time(),
        status=collect(repo, conflicts_onto=conflicts_onto, merges=merges),
        stats=collect_stats(repo.locks.events, since),
        recent=repo.locks.events.tail(recent),
    )


def describe_event(event: dict[str, Any]) -> str:
    """One event in a few words, for the "recent events" list."""
    kind = event.get("ev")
    if kind == "lock":
        return (
            f"{event.get('lock')} ({event.get('mode')}): waited {_ms(event.get('wait'))}, held {_ms(event.get('hold'))}"
        )
    if kind == "timeout":
        return f"{event.get('lock')} ({event.get('mode')}): gave up after {_ms(event.get('waited'))}"
    if kind == "refusal":
        return f"{event.get('by')}: {event.get('what')}"
    if kind == "gx":
        return f"git {event.get('cmd')} -> exit {event.get('code')} in {_ms(event.get('secs'))}"
    if kind == "tx":
        return f"{event.get('op')} {event.get('tx')}"
    if kind == "rollback":
        return f"{event.get('tx')} to {event.get('to')} ({event.get('op')})"
    if kind == "reap":
        return f"{event.get('lease') or '(no lease)'}: {event.get('action')}"
    if kind == "recover":
        return (
            f"{'ok' if event.get('ok') else 'problems'}, {event.get('actions')} action(s) in {_ms(event.get('secs'))}"
        )
    if kind == "land":
        return f"{event.get('branch')} onto {event.get('target')}: {event.get('outcome')} in {_ms(event.get('secs'))}"
    return ", ".join(f"{k}={v}" for k, v in event.items() if k not in ("t", "ev", "pid", "agent"))


def _ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "?"
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.2f}s"
