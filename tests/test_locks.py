"""The lock hierarchy, on real processes: kill, timeout, order, reentrancy, FIFO."""

from __future__ import annotations

import bisect
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from support.proc import GITXACT, ROOT, assert_clean_error, gitxact

from gitxact import LockOrderError, Workspace
from gitxact.locking.locks import REPOSITORY, resource_key, worktree_key

WORKERS = [sys.executable, str(ROOT / "fixtures" / "workers.py")]


def wait_for(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def repo_holders(repo: Path) -> list[dict]:
    doc = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    return [h for lock in doc["locks"] if lock["name"] == "repo" for h in lock["holders"]]


def queue_waiters(repo: Path) -> int:
    queue = repo / ".git" / "gitxact" / "locks" / "repo.q"
    return sum(1 for name in os.listdir(queue) if name.endswith(".w")) if queue.exists() else 0


def test_sigkilled_holder_leaves_no_stale_lock(repo: Path) -> None:
    holder = subprocess.Popen(
        [*GITXACT, "lock", "--", sys.executable, "-c", "import time; time.sleep(60)"],
        cwd=repo,
        env={**os.environ, "GITXACT_AGENT": "doomed"},
    )
    try:
        wait_for(lambda: bool(repo_holders(repo)), what="the holder to appear")
        assert repo_holders(repo)[0]["agent"] == "doomed"
        os.kill(holder.pid, signal.SIGKILL)  # only gitxact; its `sleep` child dies with it (PDEATHSIG)
        holder.wait()
        proc = gitxact("lock", "--timeout", "1", "--", "true", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        # --timeout 0 is a single attempt: success proves the lock was free at once.
        assert gitxact("lock", "--timeout", "0", "--", "true", cwd=repo).returncode == 0
        assert repo_holders(repo) == []
        queue = repo / ".git" / "gitxact" / "locks" / "repo.q"
        assert not [n for n in os.listdir(queue) if not n.startswith(".")]
    finally:
        holder.kill()
        holder.wait()


def test_timeout_names_the_holder(repo: Path) -> None:
    ready, release = repo / "ready", repo / "release"
    holder = subprocess.Popen(
        [
            *GITXACT,
            "lock",
            "--",
            sys.executable,
            "-c",
            f"import pathlib,time\npathlib.Path({str(ready)!r}).touch()\n"
            f"while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.01)",
        ],
        cwd=repo,
        env={**os.environ, "GITXACT_AGENT": "alice"},
    )
    try:
        wait_for(ready.exists, what="holder ready")
        proc = gitxact("lock", "--timeout", "0.5", "--", "true", cwd=repo)
        assert_clean_error(proc, 75)
        message = proc.stderr
        assert f"pid {holder.pid}" in message
        assert "agent alice" in message
        assert "gitxact lock" in message
        assert " for " in message
        assert os.uname().nodename.split(".")[0] in message or "on " in message
        assert len(message.strip().splitlines()) <= 3  # one line + hint (+ wait notice)
    finally:
        release.touch()
        holder.wait(timeout=20)


def test_order_violation_raises_at_once(repo: Path) -> None:
    ws = Workspace(repo)
    with ws.locks.hold(worktree_key("main")), pytest.raises(LockOrderError, match="lock order violation"):
        ws.locks.acquire(REPOSITORY)
    with ws.locks.hold(resource_key("b")), pytest.raises(LockOrderError):
        ws.locks.acquire(resource_key("a"))
    with ws.locks.hold(resource_key("a")), ws.locks.hold(resource_key("b")):
        pass  # sorted order is fine
    with ws.lock("shared"), pytest.raises(LockOrderError, match="upgrade"):
        ws.locks.acquire(REPOSITORY, "exclusive")
    assert ws.locks.held() == {}


def test_reentrant_in_process_and_across_processes(repo: Path) -> None:
    ws = Workspace(repo)
    with ws.lock(), ws.lock(), ws.lock("shared"):
        pass
    proc = gitxact(
        "lock",
        "--timeout",
        "2",
        "--",
        *GITXACT,
        "lock",
        "--timeout",
        "2",
        "--",
        sys.executable,
        "-c",
        "print('inner ran')",
        cwd=repo,
    )
    assert proc.returncode == 0, proc.stderr
    assert "inner ran" in proc.stdout
    # A shared parent cannot be upgraded by its child: a clear error, not a deadlock.
    proc = gitxact(
        "lock", "--shared", "--timeout", "2", "--", *GITXACT, "lock", "--timeout", "2", "--", "true", cwd=repo
    )
    assert proc.returncode == 1
    assert "cannot be upgraded" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_lock_passes_exit_code_and_reports_missing_command(repo: Path) -> None:
    assert gitxact("lock", "--", "sh", "-c", "exit 7", cwd=repo).returncode == 7
    proc = gitxact("lock", "--", "no-such-command-xyz", cwd=repo)
    assert_clean_error(proc, 127)
    assert "command not found" in proc.stderr


def test_threads_lose_no_update(repo: Path) -> None:
    counter = repo.parent / "counter"
    counter.write_text("0")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            ws = Workspace(repo, timeout=60)
            for _ in range(50):
                with ws.locks.resource("counter"):
                    counter.write_text(str(int(counter.read_text()) + 1))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert counter.read_text() == "400"


def test_waiters_are_served_in_arrival_order(repo: Path, tmp_path: Path) -> None:
    ready, release = tmp_path / "ready", tmp_path / "release"
    order = tmp_path / "order"
    holder = subprocess.Popen([*WORKERS, "hold", str(repo), "exclusive", str(ready), str(release)])
    waiters: list[subprocess.Popen[bytes]] = []
    try:
        wait_for(ready.exists, what="holder")
        for index in range(6):
            mode = "--shared" if index % 3 == 1 else "--exclusive"
            waiters.append(
                subprocess.Popen(
                    [*GITXACT, "lock", mode, "--timeout", "60", "--", "sh", "-c", f"echo {index} >> {order}"],
                    cwd=repo,
                )
            )
            wait_for(lambda n=index + 1: queue_waiters(repo) == n, what=f"waiter {index} queued")
        # A waiter that dies in the queue is skipped, never waited for.
        doomed = subprocess.Popen([*GITXACT, "lock", "--timeout", "60", "--", "true"], cwd=repo)
        wait_for(lambda: queue_waiters(repo) == 7, what="doomed waiter queued")
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        release.touch()
        for waiter in waiters:
            assert waiter.wait(timeout=60) == 0
        served = [int(x) for x in order.read_text().split()]
        assert served == list(range(6))
    finally:
        release.touch()
        holder.wait(timeout=30)
        for waiter in waiters:
            waiter.kill()
            waiter.wait()


@pytest.mark.parametrize(
    "seconds", [pytest.param(3, marks=pytest.mark.slow), pytest.param(20, marks=pytest.mark.stress)]
)
def test_sixteen_processes_contending_are_all_served_fifo(repo: Path, tmp_path: Path, seconds: int) -> None:
    counter = tmp_path / "counter"
    outs = [tmp_path / f"out{i}" for i in range(16)]
    procs = [
        subprocess.Popen([*WORKERS, "contend", str(repo), str(seconds), str(out), "2", str(counter)]) for out in outs
    ]
    for proc in procs:
        assert proc.wait(timeout=120) == 0
    grants = [json.loads(line) for out in outs for line in out.read_text().splitlines() if line]
    per_process = {g["pid"] for g in grants}
    assert len(per_process) == 16, "every process got the lock"
    assert int(counter.read_text()) == len(grants), "no lost update inside the lock"
    # FIFO: a ticket that became visible before another waiter started choosing its
    # own is served first. Count grants that someone arriving later overtook.
    by_chosen = sorted(grants, key=lambda g: g["chosen"])
    chosen = [g["chosen"] for g in by_chosen]
    suffix_min = [0] * (len(by_chosen) + 1)
    suffix_min[-1] = 2**63
    for index in range(len(by_chosen) - 1, -1, -1):
        suffix_min[index] = min(suffix_min[index + 1], by_chosen[index]["granted"])
    overtaken = sum(1 for a in grants if suffix_min[bisect.bisect_right(chosen, a["visible"])] < a["granted"])
    assert overtaken == 0
    waits = sorted(g["waited"] for g in grants)
    print(
        f"grants={len(grants)} p50={waits[len(waits) // 2]:.4f}s max={waits[-1]:.4f}s "
        f"max/mean={waits[-1] / (sum(waits) / len(waits)):.1f}"
    )


def test_child_reaching_the_repo_through_a_symlink_inherits(repo: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    alias.symlink_to(repo)
    proc = gitxact(
        "lock", "--timeout", "2", "--", *GITXACT, "-C", str(alias), "lock", "--timeout", "2", "--", "true", cwd=repo
    )
    assert proc.returncode == 0, proc.stderr


def test_lock_child_sees_the_users_environment(repo: Path) -> None:
    proc = gitxact("lock", "--", "env", cwd=repo, env={"MY_SETTING": "kept"})
    assert "MY_SETTING=kept" in proc.stdout
    assert "PYDANTIC_DISABLE_PLUGINS" not in proc.stdout, "start-up tweaks stay inside gitxact"
    assert "GITXACT_LOCKS=" in proc.stdout, "children inherit the lock"
