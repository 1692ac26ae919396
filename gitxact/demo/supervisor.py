"""The demo's orchestrator: starts the agents, follows them, interferes, then checks.

It plays the part of everything around the agents: it tries ``gc`` once every agent has
its worktree, SIGKILLs the ``crash`` agent while that agent has work in flight and runs
``gitxact recover`` after it, and at the end compares what the agents saw succeed with
what git holds (every commit an agent meant to land, by its unique message; the counter;
``git fsck --strict``; leases and worktrees left behind).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from gitxact import git
from gitxact.demo.agent import tool
from gitxact.demo.progress import Progress
from gitxact.demo.scenario import AgentRow, DemoSummary, Mode, agent_name, roles

Event = tuple[int, dict[str, object]]


def make_repo(root: Path, mode: Mode) -> Path:
    repo = root / "project"
    repo.mkdir()
    git.run(["init", "-q", "-b", "main"], repo)
    for key, value in (("user.name", "gitxact demo"), ("user.email", "demo@gitxact.invalid"), ("gc.auto", "0")):
        git.run(["config", key, value], repo)
    (repo / "README.md").write_text("# a project several agents work on\n")
    git.run(["add", "README.md"], repo)
    git.run(["commit", "-q", "-m", "initial"], repo)
    if mode == "gitxact":
        for argv in (["init"], ["hooks", "install"]):
            subprocess.run([*tool("gitxact"), *argv], cwd=repo, capture_output=True, check=True)
    return repo


class Supervisor:
    def __init__(self, mode: Mode, agents: int, commits: int, bumps: int, progress: Progress | None) -> None:
        self.mode = mode
        self.agents = agents
        self.commits = commits
        self.bumps = bumps
        self.rows = [AgentRow(name=agent_name(i), role=role) for i, role in enumerate(roles(agents))]
        self.progress = progress
        self.events: queue.Queue[Event | None] = queue.Queue()
        self.procs: list[subprocess.Popen[str]] = []
        self.acked: dict[str, bool] = {}
        self.gc_attempts = 0
        self.gc_refused = 0
        self.recover_actions: list[str] = []
        self.recovered = False
        self._acquired = 0

    # -- following the agents ------------------------------------------------------------

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)

    def spawn(self, repo: Path, control: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        env.pop("GITXACT_AGENT", None)
        env.pop("GITXACT_LEASE_TOKEN", None)
        for index, row in enumerate(self.rows):
            argv = [sys.executable, "-m", "gitxact.demo.agent", self.mode, str(repo), str(control), row.name, row.role]
            argv += [str(self.commits), str(self.bumps), str(self.agents)]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
            self.procs.append(proc)
            assert proc.stdout is not None  # noqa: S101 - stdout=PIPE
            threading.Thread(target=self._read, args=(index, proc.stdout), daemon=True).start()

    def _read(self, index: int, stream: IO[str]) -> None:
        for line in stream:
            try:
                self.events.put((index, json.loads(line)))
            except ValueError:
                continue
        self.events.put(None)

    def follow(self, repo: Path) -> None:
        open_streams = len(self.procs)
        while open_streams:
            try:
                item = self.events.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                open_streams -= 1
                continue
            self.apply(repo, *item)
            if self.progress is not None:
                self.progress.update()
        for proc in self.procs:
            proc.wait()

    def apply(self, repo: Path, index: int, event: dict[str, object]) -> None:
        row = self.rows[index]
        kind = event.get("event")
        if kind in ("phase", "rollback"):
            row.phase = str(event.get("text", row.phase))
        if kind == "rollback":
            row.rollbacks += 1
        elif kind == "failure":
            row.git_failures += 1
        elif kind == "bump":
            row.bumps += 1
        elif kind == "commit":
            message, ok = str(event["message"]), bool(event.get("ok"))
            self.acked[message] = ok
            row.commits_planned += 1
            row.commits_acked += ok
        self._acquired += bool(event.get("acquired"))
        # Once every agent has its worktree (or, if one never got it, once work is shared).
        if not self.gc_attempts and (self._acquired == self.agents or kind == "commit"):
            self.try_gc(repo)
        if kind == "ready-to-die":
            self.kill(repo, index)

    # -- interfering ---------------------------------------------------------------------

    def try_gc(self, repo: Path) -> None:
        """What a cron job or a careless person does while agents work."""
        self.gc_attempts += 1
        if self.mode == "gitxact":
            proc = subprocess.run(
                [*tool("gitxact"), "gc", "--prune=now"], cwd=repo, capture_output=True, text=True, check=False
            )
            if proc.returncode == 3:
                self.gc_refused += 1
                self.note(f"gc --prune=now while {self.agents} agents work: refused (exit 3)")
            else:
                self.note(f"gc --prune=now while {self.agents} agents work: NOT refused (exit {proc.returncode})")
            return
        result = git.run(["gc", "-q", "--prune=now"], repo, check=False)
        self.note(
            f"git gc --prune=now while {self.agents} agents work: ran (exit {result.returncode}); nothing stops it"
        )

    def kill(self, repo: Path, index: int) -> None:
        row, proc = self.rows[index], self.procs[index]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        row.killed = True
        row.phase = "SIGKILLed with work in flight"
        inside = "an open transaction" if self.mode == "gitxact" else "a half-done commit"
        self.note(f"{row.name} SIGKILLed with uncommitted work and {inside}")
        if self.mode == "raw":
            self.note("raw git has no recover: its worktree, branch and half-done commit stay as they are")
            return
        done = subprocess.run(
            [*tool("gitxact"), "recover", "--json"], cwd=repo, capture_output=True, text=True, check=False
        )
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            doc = {"ok": False, "steps": []}
        self.recovered = bool(doc.get("ok"))
        self.recover_actions = [action for step in doc.get("steps", []) for action in step.get("actions", [])]
        self.note(f"gitxact recover: {'ok' if self.recovered else 'FAILED'}, {len(self.recover_actions)} actions")
        for action in self.recover_actions:
            self.note(f"  {action}")
        row.phase = "killed; recovered" if self.recovered else "killed; recover failed"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    # -- checking ------------------------------------------------------------------------

    def summarize(self, repo: Path, control: Path, seconds: float, kept_at: str | None) -> DemoSummary:
        on_branches = set(git.run(["log", "--branches", "--format=%s"], repo, read_only=True).lines())
        for row in self.rows:
            prefix = f"{row.name}: "
            row.commits_landed = sum(1 for m in self.acked if m.startswith(prefix) and m in on_branches)
        planned = sum(row.commits_planned for row in self.rows)
        landed = sum(row.commits_landed for row in self.rows)
        expected = sum(row.bumps for row in self.rows)
        kept = _counter(repo, control, self.mode)
        fsck = git.run(["fsck", "--strict", "--no-progress", "--no-dangling"], repo, check=False)
        leases = 0
        if self.mode == "gitxact":
            from gitxact.workspace import Workspace

            leases = len(Workspace(repo).worktrees.list().leases)
        crashed = [row.name for row in self.rows if row.killed]
        return DemoSummary(
            mode=self.mode,
            agents=self.agents,
            commits_per_agent=self.commits,
            bumps_per_agent=self.bumps,
            seconds=round(seconds, 2),
            commits_planned=planned,
            commits_landed=landed,
            git_failures=sum(row.git_failures for row in self.rows),
            tracker_expected=expected,
            tracker_kept=kept,
            tdd_rollbacks=sum(row.rollbacks for row in self.rows),
            gc_attempts=self.gc_attempts,
            gc_refused=self.gc_refused,
            killed=len(crashed),
            recovered=self.recovered,
            recover_actions=self.recover_actions,
            snapshots=[ref for name in crashed for ref in _snapshots_holding(repo, name, "unsaved-idea.txt")],
            leases_left=leases,
            worktrees_left=len(git.list_worktrees(repo)) - 1,
            fsck_clean=fsck.ok and not fsck.stdout.strip(),
            lost=(planned - landed) + max(0, expected - kept),
            repository=kept_at,
            rows=self.rows,
        )


def _counter(repo: Path, control: Path, mode: Mode) -> int:
    if mode == "gitxact":
        from gitxact.workspace import Workspace

        entries = Workspace(repo).tracker.get()
        value = entries["tests.run"].value if "tests.run" in entries else 0
        return value if isinstance(value, int) else 0
    try:
        return int(json.loads((control / "tracker.json").read_text()).get("tests.run", 0))
    except (OSError, ValueError):
        return 0


def _snapshots_holding(repo: Path, agent: str, name: str) -> list[str]:
    """Snapshot refs of *agent* whose saved files include *name* (its uncommitted work)."""
    refs = git.run(["for-each-ref", "--format=%(refname)", f"refs/gitxact/snapshots/{agent}/"], repo, read_only=True)
    found = []
    for ref in refs.lines():
        files = git.run(["ls-tree", "-r", "--name-only", ref], repo, read_only=True, check=False)
        if name in files.lines():
            found.append(ref)
    return found


def run(
    *,
    mode: Mode = "gitxact",
    agents: int = 4,
    commits: int = 5,
    bumps: int = 25,
    keep: bool = False,
    progress: bool = True,
) -> DemoSummary:
    """Run the whole scenario in a fresh temporary folder; remove it unless *keep*."""
    root = Path(tempfile.mkdtemp(prefix="gitxact-demo-"))
    started = time.monotonic()
    supervisor: Supervisor | None = None
    try:
        repo = make_repo(root, mode)
        control = root / "control"
        control.mkdir()
        supervisor = Supervisor(mode, agents, commits, bumps, None)
        if progress:
            supervisor.progress = Progress(supervisor.rows, sys.stderr, commits=commits, bumps=bumps)
            how = "gitxact (leases, gx, tdd, tracker)" if mode == "gitxact" else "raw git (no gitxact)"
            supervisor.note(f"gitxact demo: {agents} agents at once on {repo}, with {how}")
        supervisor.spawn(repo, control)
        supervisor.follow(repo)
        return supervisor.summarize(repo, control, time.monotonic() - started, str(root) if keep else None)
    finally:
        if supervisor is not None:
            supervisor.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
