"""``gitxact stats --openmetrics``: the figures in the OpenMetrics text format.

One family per figure, each with ``# TYPE``, ``# UNIT`` (where it has one, the name
ending in it, as the format requires) and ``# HELP``, then ``# EOF``. Wait and hold
times are summaries (quantiles 0.5/0.95/0.99, ``_sum``, ``_count``), their maxima
gauges. Counts are gauges, not counters: they are counted over the window the event
record still holds, which moves as it rotates, so they can go down.

``--textfile PATH`` writes the same text for node-exporter's textfile collector, by
rename, so the collector never reads half a file.
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

from gitxact.observe.stats import Figures, StatsDoc

Labels = dict[str, str]


class _Family:
    def __init__(self, name: str, kind: str, unit: str, text: str) -> None:
        self.name = name
        self.lines = [f"# TYPE {name} {kind}"]
        if unit:
            self.lines.append(f"# UNIT {name} {unit}")
        self.lines.append(f"# HELP {name} {text}")

    def sample(self, value: float, labels: Labels | None = None, suffix: str = "") -> None:
        self.lines.append(f"{self.name}{suffix}{_labels(labels or {})} {_number(value)}")

    def summary(self, figures: Figures, count: int, labels: Labels) -> None:
        for quantile, value in (("0.5", figures.p50), ("0.95", figures.p95), ("0.99", figures.p99)):
            self.sample(value, {**labels, "quantile": quantile})
        self.sample(figures.sum, labels, "_sum")
        self.sample(count, labels, "_count")


def render(doc: StatsDoc) -> str:
    """The whole exposition, ``# EOF`` included."""
    families: list[_Family] = []

    def family(name: str, kind: str, unit: str, text: str) -> _Family:
        families.append(_Family(name, kind, unit, text))
        return families[-1]

    wait = family("gitxact_lock_wait_seconds", "summary", "seconds", "Time queued before a lock was granted.")
    hold = family("gitxact_lock_hold_seconds", "summary", "seconds", "Time a granted lock was held.")
    wait_max = family("gitxact_lock_wait_max_seconds", "gauge", "seconds", "Longest wait for a lock.")
    hold_max = family("gitxact_lock_hold_max_seconds", "gauge", "seconds", "Longest hold of a lock.")
    granted = family("gitxact_lock_acquisitions", "gauge", "", "Lock acquisitions that queued and were granted.")
    timeouts = family("gitxact_lock_timeouts", "gauge", "", "Lock waits that ran out (LockTimeoutError).")
    for name, figures in doc.locks.items():
        labels = {"lock": name}
        wait.summary(figures.wait, figures.granted, labels)
        hold.summary(figures.hold, figures.granted, labels)
        wait_max.sample(figures.wait.max, labels)
        hold_max.sample(figures.hold.max, labels)
        granted.sample(figures.granted, labels)
        timeouts.sample(figures.timeouts, labels)
    success = family(
        "gitxact_lock_acquisition_success_ratio", "gauge", "ratio", "Granted / (granted + timed out) acquisitions."
    )
    if doc.success_rate is not None:
        success.sample(doc.success_rate)
    refusals = family("gitxact_refusals", "gauge", "", "Operations a guard refused on purpose, by guard.")
    for by, count in doc.refusals.items():
        refusals.sample(count, {"by": by})
    per_agent = [
        ("gitxact_agent_commits", "Commits made through gx.", "commits"),
        ("gitxact_agent_transactions", "Transactions begun.", "transactions"),
        ("gitxact_agent_rollbacks", "Transactions rolled back (asked for, or a failed TDD check).", "rollbacks"),
        ("gitxact_agent_lands", "Branches landed through the queue.", "lands"),
        ("gitxact_agent_lands_refused", "Branches the landing queue refused.", "lands_refused"),
    ]
    for name, text, field in per_agent:
        counted = family(name, "gauge", "", text)
        for agent, counts in doc.agents.items():
            counted.sample(getattr(counts, field), {"agent": agent})
    recoveries = family("gitxact_recoveries", "gauge", "", "Runs of gitxact recover.")
    recoveries.sample(doc.recoveries.count)
    reaps = family("gitxact_reaps", "gauge", "", "Leases ended by reap or recover.")
    reaps.sample(doc.recoveries.reaps)
    recovery = family("gitxact_recovery_max_seconds", "gauge", "seconds", "Longest run of gitxact recover.")
    if doc.recoveries.count:
        recovery.sample(doc.recoveries.seconds.max)
    queue_wait = family("gitxact_land_queue_wait_seconds", "summary", "seconds", "Time a landing request waited.")
    queue_wait.summary(doc.queue.waited, doc.queue.landed + doc.queue.not_landed, {})
    per_landed = family("gitxact_land_checks_per_landed", "gauge", "", "Checked candidate builds per landed request.")
    if doc.queue.checks_per_landed is not None:
        per_landed.sample(doc.queue.checks_per_landed)
    not_landed = family("gitxact_land_refusals", "gauge", "", "Landing requests not landed, by why.")
    for why, count in doc.queue.refusals.items():
        not_landed.sample(count, {"why": why})
    met = family("gitxact_target_met", "gauge", "", "1 if the operator target is met, 0 if not (absent: no data).")
    for target in doc.targets:
        if target.met is not None:
            met.sample(1 if target.met else 0, {"target": target.name, "goal": target.goal})
    lines = [line for f in families for line in f.lines]
    return "\n".join([*lines, "# EOF"]) + "\n"


def write_textfile(path: Path, text: str) -> None:
    """Replace *path* with *text* in one rename (node-exporter reads it at any moment)."""
    folder = path.parent if str(path.parent) else Path()
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)  # readable by the collector, which runs as another user
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(round(float(value), 9))  # sums of microsecond times, without float noise
