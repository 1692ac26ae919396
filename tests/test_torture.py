"""The torture run in the suite: random work, kills and recovers for a while; nothing lost.

8 s by default (a mix of operations and kills); the full minute, with every kind, runs
under ``-m stress``, and ``scripts/torture --seconds 600`` by hand for the README.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.proc import ROOT


@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "seconds", [pytest.param(8, marks=pytest.mark.slow), pytest.param(60, marks=pytest.mark.stress)]
)
def test_torture_loses_nothing(seconds: int) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "torture.py"),
            "--seconds",
            str(seconds),
            "--seed",
            "20261125",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=380,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["problems"] == []
    assert (result["lost_commits"], result["lost_increments"], result["phantom_increments"]) == (0, 0, 0)
    assert (result["corrupt_state_files"], result["stale_locks"], result["worktrees_left"]) == (0, 0, 0)
    assert result["live_worktrees_ended"] == 0, "a live owner past its TTL keeps its worktree"
    assert result["fsck_clean"]
    assert result["doctor_clean"]
    assert result["kills"] > 0
    assert result["recoveries"] >= result["kills"]
    assert result["commits_acknowledged"] > 0
    assert result["increments_acknowledged"] > 0
    # Every kind of operation happens in a minute; a short run is random enough to skip one.
    kinds = ("acquire", "release", "tdd-done", "tx-commit", "gc-refused", "live-past-ttl-kept")
    kinds = kinds if seconds >= 60 else ("acquire",)
    for op in kinds:
        assert result["ops"].get(op, 0) > 0, (op, result["ops"])
    # How many kinds a few seconds reach depends on the machine's load (one run with the load
    # at 15 reached only acquires and releases): the short run asks for one besides acquire.
    wanted = 2 if seconds >= 60 else 1
    assert sum(1 for op in ("release", "tdd-done", "tx-commit", "gc-refused") if result["ops"].get(op)) >= wanted
    # The partitioned holder (issue 25): at least one round where the machine allows it, none overlapping.
    side = result["partition"]
    from fixtures.partition import why_not

    if why_not() is None:
        assert side["skipped"] is None, side
        assert side["rounds"] >= 1
    assert side["overlaps"] == 0
