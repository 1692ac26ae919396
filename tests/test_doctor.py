"""`gitxact doctor` finds each kind of inconsistency, fixes it, and a second run is clean."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.health import doctor
from support.proc import gitxact


def test_clean_repository(repo: Path) -> None:
    gitxact("init", cwd=repo)
    code, report = doctor(repo)
    assert code == 0
    assert report["findings"] == []


def test_corrupt_state_file_fixed_idempotently(repo: Path) -> None:
    for _ in range(2):
        gitxact("tracker", "incr", "n", cwd=repo)
    state = repo / ".git" / "gitxact" / "state"
    (state / "tracker.json").write_text("{ torn")
    code, report = doctor(repo)
    assert code == 1
    assert [f["check"] for f in report["findings"]] == ["state"]
    assert not report["findings"][0]["fixed"]
    assert (state / "tracker.json").read_text() == "{ torn", "report mode changes nothing"
    code, report = doctor(repo, "--fix")
    assert code == 0
    assert report["findings"][0]["fixed"]
    assert gitxact("tracker", "get", "n", cwd=repo).stdout.strip() == "1"
    assert doctor(repo, "--fix") == (0, {**report, "findings": []})


def test_unrecoverable_state_file_is_reset_and_kept_for_inspection(repo: Path) -> None:
    gitxact("tracker", "incr", "n", cwd=repo)
    state = repo / ".git" / "gitxact" / "state"
    (state / "tracker.json").write_text("garbage")
    code, report = doctor(repo, "--fix")
    assert code == 0
    assert "afresh" in report["findings"][0]["repair"]
    assert list(state.glob("tracker.json.corrupt-*"))
    assert gitxact("tracker", "incr", "n", cwd=repo).stdout.strip() == "1"
    assert doctor(repo)[0] == 0


def test_dead_lock_records_are_cleared(repo: Path) -> None:
    gitxact("lock", "--", "true", cwd=repo)
    queue = repo / ".git" / "gitxact" / "locks" / "repo.q"
    # A holder record and a ticket nobody holds a kernel lock on: their owner died.
    (queue / f"{time.monotonic_ns():020d}-999999-deadbeef.x.h").write_text("{}")
    (queue / f"{time.monotonic_ns():020d}-999998-deadbeef.s.w").write_text("{}")
    code, report = doctor(repo)
    assert code == 1
    assert len(report["findings"]) == 2
    code, report = doctor(repo, "--fix")
    assert code == 0
    assert [n for n in os.listdir(queue) if not n.startswith(".")] == []
    assert doctor(repo)[0] == 0
