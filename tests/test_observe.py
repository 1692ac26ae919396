"""``gitxact stats`` and ``gitxact watch`` (issue 18) against real processes.

Processes hold, wait for and give up on a lock while the test looks with ``watch
--once`` and ``stats --json``; the counts must be exactly what the test made happen,
and the times within what the test measured itself.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.proc import GITXACT, GX, gitxact, owner_process, run, wait_for_file

from gitxact import Workspace
from gitxact.locking.locks import resource_key
from gitxact.observe import openmetrics
from gitxact.observe.stats import summarize

HOLDER = """
import os, sys, time
from pathlib import Path
from gitxact import Workspace
from gitxact.errors import LockTimeoutError
repo, agent, timeout, ready, release = sys.argv[1:6]
ws = Workspace(repo, agent=agent)
try:
    with ws.locks.resource("work", timeout=float(timeout)):
        Path(ready).write_text(str(os.getpid()))
        while release != "-" and not Path(release).exists():
            time.sleep(0.01)
except LockTimeoutError:
    sys.exit(75)
"""


def _locker(repo: Path, agent: str, timeout: float, ready: Path, release: Path | None) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", HOLDER, str(repo), agent, str(timeout), str(ready), str(release or "-")]
    return subprocess.Popen(argv, stderr=subprocess.DEVNULL)


def _queued(repo: Path, pid: int) -> None:
    """Wait until *pid* has its ticket in the queue of the lock ``work``."""
    locks = Workspace(repo).locks
    deadline = time.monotonic() + 60
    while not any(p.pid == pid and not p.holding for p in locks.parties(resource_key("work"))):
        assert time.monotonic() < deadline, "the waiter never queued"
        time.sleep(0.01)


def _stats(repo: Path, *args: str) -> dict[str, object]:
    proc = gitxact("stats", "--json", *args, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc


def test_watch_and_stats_show_what_processes_hold_wait_for_and_give_up_on(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    Workspace(repo).worktrees.acquire("agent-1", owner_pid=os.getpid())  # the test process owns it: alive
    ready, release, got = tmp_path / "ready", tmp_path / "release", tmp_path / "got"
    holder = _locker(repo, "holder", 60, ready, release)
    waiter = late = None
    try:
        wait_for_file(ready, "the holder to take the lock", holder)
        held_from = time.time()
        waiter_started = time.monotonic()
        waiter = _locker(repo, "waiter", 60, got, None)
        _queued(repo, waiter.pid)
        queued_at = time.time()
        late = _locker(repo, "late", 0.3, tmp_path / "never", None)
        assert late.wait(timeout=60) == 75, "the third one gives up"

        # COLUMNS: no wrapped rows, whatever the runner sets
        frame = gitxact("watch", "--once", cwd=repo, env={"COLUMNS": "250"})
        assert frame.returncode == 0, frame.stderr
        lines = frame.stdout.splitlines()
        held = [line for line in lines if "resource.work" in line and "held" in line]
        waiting = [line for line in lines if "resource.work" in line and "waiting #1" in line]
        assert len(held) == 1
        assert f"pid {holder.pid} (holder)" in held[0]
        assert len(waiting) == 1
        assert f"pid {waiter.pid} (waiter)" in waiting[0]
        assert "1 lock(s) held, 1 waiting; 1 lease(s), 0 stale" in frame.stdout
        lease = next(line for line in lines if line.strip().startswith("agent-1"))
        assert f"pid {os.getpid()} alive" in lease
        assert "gitxact/agent-1" in lease
        assert "clean" in lease
        timeout_line = next(line for line in lines if " timeout " in line)
        assert "late" in timeout_line
        assert "resource.work (exclusive): gave up after" in timeout_line
        assert "health" in lines

        release.touch()
        released_at = time.time()
        assert holder.wait(timeout=60) == 0
        assert waiter.wait(timeout=60) == 0
        waiter_lifetime = time.monotonic() - waiter_started
    finally:
        release.touch()
        for proc in (holder, waiter, late):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    doc = _stats(repo)
    work = doc["locks"]["resource.work"]  # type: ignore[index]
    assert (work["granted"], work["timeouts"]) == (2, 1)
    agents = doc["agents"]
    assert agents["holder"]["acquisitions"] == 1  # type: ignore[index]
    assert agents["waiter"]["acquisitions"] == 1  # type: ignore[index]
    assert (agents["late"]["acquisitions"], agents["late"]["timeouts"]) == (0, 1)  # type: ignore[index]
    overall = doc["all_locks"]
    assert overall["timeouts"] == 1  # type: ignore[index]
    assert doc["success_rate"] == overall["granted"] / (overall["granted"] + 1)  # type: ignore[index]
    # The holder held from before the test saw it ready until after the test let go;
    # the waiter waited at least from when the test saw it queued until then, and no
    # longer than it lived.
    assert work["hold"]["max"] >= released_at - held_from - 0.01
    assert released_at - queued_at - 0.01 <= work["wait"]["max"] <= waiter_lifetime
    names = [t["name"] for t in doc["targets"]]  # type: ignore[attr-defined]
    assert names == ["average lock hold", "lock acquisition success", "recovery time"]
    success = doc["targets"][1]  # type: ignore[index]
    assert success["met"] is (doc["success_rate"] >= 0.999)  # type: ignore[operator]
    assert doc["targets"][2]["met"] is None  # type: ignore[index]  # no recover ran


def test_stats_count_commits_refusals_transactions_rollbacks_and_recoveries_per_agent(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    lease = Workspace(repo).worktrees.acquire("agent-1", owner_pid=os.getpid())
    worktree = Path(lease.path)
    as_agent = {"GITXACT_AGENT": "agent-1", "GITXACT_LEASE_TOKEN": lease.token or ""}
    (worktree / "a.txt").write_text("a\n")
    assert run([*GX, "add", "a.txt"], worktree, as_agent).returncode == 0
    assert run([*GX, "commit", "-q", "-m", "a"], worktree, as_agent).returncode == 0
    assert run([*GX, "gc"], repo, {"GITXACT_AGENT": "ops"}).returncode == 3, "gc is refused while a lease lives"
    assert gitxact("tx", "begin", cwd=worktree, env=as_agent).returncode == 0
    (worktree / "b.txt").write_text("b\n")
    assert gitxact("tx", "rollback", cwd=worktree, env=as_agent).returncode == 0
    assert not (worktree / "b.txt").exists()
    with owner_process() as owner:
        Workspace(repo).worktrees.acquire("agent-2", owner_pid=owner.pid)
    assert gitxact("recover", cwd=repo).returncode == 0  # reaps agent-2: its owner is gone

    doc = _stats(repo)
    agent = doc["agents"]["agent-1"]  # type: ignore[index]
    assert (agent["gx_commands"], agent["commits"]) == (2, 1)  # add and commit; one commit
    assert (agent["transactions"], agent["rollbacks"]) == (1, 1)
    assert doc["refusals"] == {"gx": 1}
    assert doc["agents"]["ops"]["refusals"] == 1  # type: ignore[index]
    recoveries = doc["recoveries"]
    assert (recoveries["count"], recoveries["failed"], recoveries["reaps"]) == (1, 0, 1)  # type: ignore[index]
    assert doc["targets"][2]["met"] is True  # type: ignore[index]
    assert _stats(repo, "--since", "0s")["events"] == 0  # nothing happened after the moment asked
    assert _stats(repo, "--since", "1h")["events"] == doc["events"]


def test_openmetrics_exposition_has_one_family_per_figure_and_ends_with_eof(repo: Path, tmp_path: Path) -> None:
    events = [
        {"t": 1.0, "ev": "lock", "agent": "a", "lock": "repo", "mode": "exclusive", "wait": 0.5, "hold": 0.01},
        {"t": 2.0, "ev": "lock", "agent": "b", "lock": "repo", "mode": "exclusive", "wait": 0.1, "hold": 0.03},
        {"t": 3.0, "ev": "timeout", "agent": "c", "lock": "repo", "mode": "exclusive", "waited": 1.0},
        {"t": 4.0, "ev": "gx", "agent": 'q"uote', "cmd": "commit", "code": 0, "secs": 0.1},
        {"t": 5.0, "ev": "recover", "agent": None, "ok": True, "actions": 2, "secs": 1.5},
    ]
    doc = summarize(events, since=None, now=10.0)
    text = openmetrics.render(doc)
    lines = text.splitlines()
    assert lines[-1] == "# EOF"
    assert text.endswith("# EOF\n")
    families = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert len(families) == len(set(families)), "one family per figure"
    for name in families:
        assert f"# HELP {name} " in text
        unit = next((line.split()[3] for line in lines if line.startswith(f"# UNIT {name} ")), None)
        if unit is not None:
            assert name.endswith("_" + unit), "a family with a unit is named for it"
    samples = [line for line in lines if not line.startswith("#")]
    assert all(any(s.startswith(f) for f in families) for s in samples)
    assert 'gitxact_lock_wait_seconds{lock="repo",quantile="0.5"} 0.1' in lines
    assert 'gitxact_lock_wait_seconds_count{lock="repo"} 2' in lines
    assert 'gitxact_lock_hold_max_seconds{lock="repo"} 0.03' in lines
    assert 'gitxact_lock_timeouts{lock="repo"} 1' in lines
    assert "gitxact_lock_acquisition_success_ratio 0.666666667" in lines
    assert 'gitxact_agent_commits{agent="q\\"uote"} 1' in lines
    assert "gitxact_recovery_max_seconds 1.5" in lines
    assert 'gitxact_target_met{target="lock acquisition success",goal=">= 99.9%"} 0' in lines

    assert gitxact("init", cwd=repo).returncode == 0
    out = tmp_path / "metrics" / "gitxact.prom"
    out.parent.mkdir()
    proc = gitxact("stats", "--textfile", str(out), cwd=repo)
    assert (proc.returncode, proc.stdout) == (0, "")
    assert out.read_text().endswith("# EOF\n")
    assert [p.name for p in out.parent.iterdir()] == ["gitxact.prom"], "written by rename, nothing left beside"
    shown = gitxact("stats", "--openmetrics", cwd=repo)
    assert shown.returncode == 0
    assert shown.stdout.splitlines()[0] == "# TYPE gitxact_lock_wait_seconds summary"


@pytest.mark.parametrize("since", ["soon", "-1h"])
def test_a_bad_since_is_a_usage_error(repo: Path, since: str) -> None:
    proc = gitxact("stats", "--since", since, cwd=repo)
    assert proc.returncode == 2
    assert "invalid --since" in proc.stderr


def test_status_keeps_its_lock_times_from_the_event_record(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0
    doc = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    assert doc["lock_times"]["locks"]["resource.tracker"]["count"] == 1
    assert "lock times" in gitxact("status", cwd=repo).stdout


def _read_until(fd: int, wanted: bytes, proc: subprocess.Popen[bytes]) -> bytes:
    """What the terminal showed, up to and including *wanted* (fails if the process ends first)."""
    seen = b""
    deadline = time.monotonic() + 60
    while wanted not in seen:
        assert proc.poll() is None, seen[-2000:]
        assert time.monotonic() < deadline, seen[-2000:]
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            seen += os.read(fd, 65536)
    return seen


@pytest.mark.parametrize("stop", ["q", "ctrl-c"])
def test_watch_redraws_on_a_terminal_until_q_or_ctrl_c(repo: Path, stop: str) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    main, child = pty.openpty()
    argv = [*GITXACT, "watch", "--interval", "0.2"]
    proc = subprocess.Popen(argv, cwd=repo, stdin=child, stdout=child, stderr=child, start_new_session=True)
    os.close(child)
    try:
        first = _read_until(main, b"recent events", proc)
        assert b"health" in first
        again = _read_until(main, b"recent events", proc)  # redrawn in place
        assert b"gitxact watch" in again
        if stop == "q":
            os.write(main, b"q")
        else:
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)
