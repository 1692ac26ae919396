"""The torture run in the suite: about a minute of random work, kills and recovers; nothing lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.proc import ROOT


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_minute_of_torture_loses_nothing() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "torture.py"), "--seconds", "60", "--seed", "20261125", "--json"],
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
    assert result["fsck_clean"]
    assert result["doctor_clean"]
    assert result["kills"] > 0
    assert result["recoveries"] >= result["kills"]
    assert result["commits_acknowledged"] > 0
    assert result["increments_acknowledged"] > 0
    for op in ("acquire", "release", "tdd-done", "tx-commit", "gc-refused"):
        assert result["ops"].get(op, 0) > 0, (op, result["ops"])
