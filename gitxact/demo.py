"""``gitxact demo``: several agents on one repository at once, in a temporary folder.

Each agent is a separate process. Every agent bumps a shared counter three ways, the
same number of times: through the gitxact tracker, as a read-modify-write of a JSON
file under ``gitxact``'s repository lock, and as the same read-modify-write with no
lock (what agents do today). The summary shows what each way kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from gitxact import git
from gitxact.documents import Document
from gitxact.locks import summarize_waits
from gitxact.workspace import Workspace


class DemoRow(BaseModel):
    method: str
    expected: int
    kept: int
    lost: int


class DemoSummary(Document):
    agents: int
    rounds: int
    repository: str
    rows: list[DemoRow]
    lost: int
    raw_lost: int
    lock_wait_p50_ms: float
    lock_wait_p99_ms: float
    seconds: float


def _make_repo(root: Path) -> Path:
    repo = root / "project"
    repo.mkdir()
    git.run(["init", "-q", "-b", "main"], repo)
    (repo / "README.md").write_text("# demo project\n")
    git.run(["add", "README.md"], repo)
    git.run(
        ["-c", "user.name=gitxact demo", "-c", "user.email=demo@gitxact.invalid", "commit", "-q", "-m", "initial"],
        repo,
    )
    return repo


def _rmw(path: Path) -> None:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        data = {}
    data["done"] = int(data.get("done", 0)) + 1
    time.sleep(0.003)  # the think time between read and write that real agents have
    path.write_text(json.dumps(data))


def worker(repo: str, agent: str, rounds: int) -> int:
    """One agent: *rounds* increments each way."""
    ws = Workspace(repo, agent=agent, timeout=-1)
    go = Path(repo) / ".demo-go"
    (Path(repo) / f".demo-ready-{agent}").touch()
    while not go.exists():  # start together, as agents launched by one orchestrator do
        time.sleep(0.005)
    locked_file = Path(repo) / "tracker-locked.json"
    raw_file = Path(repo) / "tracker-raw.json"
    for _ in range(rounds):
        ws.tracker.incr("tasks.done")
        with ws.lock():
            _rmw(locked_file)
        _rmw(raw_file)
    return 0


def _read_done(path: Path) -> int:
    try:
        return int(json.loads(path.read_text()).get("done", 0))
    except (OSError, ValueError):
        return 0


def run(agents: int = 4, rounds: int = 25, keep: bool = False, progress: bool = True) -> DemoSummary:
    root = Path(tempfile.mkdtemp(prefix="gitxact-demo-"))
    repo = _make_repo(root)
    ws = Workspace(repo)
    ws.init()
    (repo / ".git" / "info" / "exclude").write_text(".demo-*\ntracker-*.json\n")
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gitxact.demo", str(repo), f"agent-{i + 1}", str(rounds)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for i in range(agents)
    ]
    if progress:
        print(f"gitxact demo: {agents} agents x {rounds} rounds in {repo}", file=sys.stderr)
    deadline = time.monotonic() + 60
    while len(list(repo.glob(".demo-ready-*"))) < agents and time.monotonic() < deadline:
        time.sleep(0.01)
    (repo / ".demo-go").touch()
    failures = sum(1 for proc in procs if proc.wait() != 0)
    seconds = time.monotonic() - started
    expected = agents * rounds
    tracker_kept = ws.tracker.get("tasks.done")["tasks.done"].value if failures == 0 else 0
    kept = {
        "gitxact tracker incr": int(tracker_kept) if isinstance(tracker_kept, int) else 0,
        "JSON file under gitxact lock": _read_done(repo / "tracker-locked.json"),
        "JSON file, no lock (raw)": _read_done(repo / "tracker-raw.json"),
    }
    rows = [DemoRow(method=m, expected=expected, kept=k, lost=expected - k) for m, k in kept.items()]
    waits = summarize_waits(ws.locks.stats())["all"]
    summary = DemoSummary(
        agents=agents,
        rounds=rounds,
        repository=str(repo),
        rows=rows,
        lost=rows[0].lost + rows[1].lost,
        raw_lost=rows[2].lost,
        lock_wait_p50_ms=round(float(waits["wait_p50"]) * 1000, 3),
        lock_wait_p99_ms=round(float(waits["wait_p99"]) * 1000, 3),
        seconds=round(seconds, 2),
    )
    if not keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    return summary


def render(summary: DemoSummary) -> str:
    lines = [
        f"{summary.agents} agents x {summary.rounds} rounds, {summary.seconds:.1f}s",
        f"{'method':<32} {'expected':>8} {'kept':>6} {'lost':>6}",
    ]
    lines += [f"{r.method:<32} {r.expected:>8} {r.kept:>6} {r.lost:>6}" for r in summary.rows]
    lines.append(
        f"lock wait p50 {summary.lock_wait_p50_ms:.1f} ms, p99 {summary.lock_wait_p99_ms:.1f} ms; "
        f"lost with gitxact = {summary.lost}, lost without = {summary.raw_lost}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(worker(sys.argv[1], sys.argv[2], int(sys.argv[3])))
