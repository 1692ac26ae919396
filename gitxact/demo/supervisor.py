"""The demo's orchestrator: starts the agents, follows them, interferes, then checks.

It plays the part of everything around the agents: it tries ``gc`` once every agent has
its worktree, SIGKILLs the ``crash`` agent while that agent has work in flight and runs
``gitxact recover`` after it, and at the end compares what the agents saw succeed with
what git holds (every commit an agent meant to land, by its unique message; the counter;
``git fsck --strict``; leases and worktrees left behind).
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO

from gitxact.demo.agent import tool
from gitxact.demo.progress import Progress
from gitxact.demo.scenario import (
    BARRIERS,
    LEASE_FILE,
    PROJECT_CONFIG,
    AgentRow,
    DemoSummary,
    Mode,
    agent_name,
    roles,
)
from gitxact.errors import OperationFailedError
from gitxact.git import run as git
from gitxact.project.config import CONFIG_FILE

Event = tuple[int, dict[str, object]]


def make_repo(root: Path, mode: Mode) -> tuple[Path, bool]:
    """The project, and (with gitxact) whether ``gitxact trust`` trusted its ``.gitxact.toml``.

    The file is committed in both modes, so the two repositories are the same; only
    gitxact reads it. It is trusted the way a user does it (``gitxact trust``, which
    records the content's SHA-256): an acquire refuses an untrusted file's commands.
    """
    repo = root / "project"
    repo.mkdir()
    git.run(["init", "-q", "-b", "main"], repo)
    git.run(["config", "gc.auto", "0"], repo)  # the demo's gc is the one it runs on purpose
    (repo / "README.md").write_text("# a project several agents work on\n")
    (repo / CONFIG_FILE).write_text(PROJECT_CONFIG)
    (repo / ".gitignore").write_text(f"{LEASE_FILE}\n")
    git.run(["add", "README.md", CONFIG_FILE, ".gitignore"], repo)
    git.run(["commit", "-q", "-m", "initial, with how each lease is provisioned"], repo)
    if mode == "raw":
        return repo, False
    for argv in (["init"], ["hooks", "install"]):
        subprocess.run([*tool("gitxact"), *argv], cwd=repo, capture_output=True, check=True)
    done = subprocess.run([*tool("gitxact"), "trust", "--json"], cwd=repo, capture_output=True, text=True, check=False)
    try:
        trusted = done.returncode == 0 and bool(json.loads(done.stdout).get("trusted"))
    except ValueError:
        trusted = False
    return repo, trusted


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
        self.trusted = False
        self._acquired = 0
        self.control: Path | None = None

    # -- following the agents ------------------------------------------------------------

    def note(self, text: str) -> None:
        if self.progress is not None:
            self.progress.note(text)

    def spawn(self, repo: Path, control: Path) -> None:
        self.control = control
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for index, row in enumerate(self.rows):
            argv = [sys.executable, "-m", "gitxact.demo.agent", self.mode, str(repo), str(control), row.name, row.role]
            argv += [str(self.commits), str(self.bumps), str(self.agents)]
            # A session (and process group) per agent: a kill takes its git and gitxact children too.
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, start_new_session=True
            )
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

    def follow(self, repo: Path, limit: float) -> None:
        deadline = time.monotonic() + limit
        open_streams = len(self.procs)
        while open_streams:
            if time.monotonic() > deadline:
                raise OperationFailedError(f"the demo's agents did not finish within {limit:.0f}s; they were stopped")
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
        for proc, row in zip(self.procs, self.rows, strict=True):
            row.exit_code = proc.wait(timeout=30)

    def apply(self, repo: Path, index: int, event: dict[str, object]) -> None:
        row = self.rows[index]
        kind = event.get("event")
        if kind in ("phase", "rollback"):
            row.phase = str(event.get("text", row.phase))
        if kind == "rollback":
            row.rollbacks += 1
        elif kind == "failure":
            row.git_failures += 1
            self.note(f"{row.name}: {event.get('command')} failed: {event.get('error')}")
        elif kind == "bump":
            row.bumps += 1
        elif kind == "land":
            row.land = str(event.get("outcome"))
        elif kind == "provisioned":
            port = event.get("port")
            row.port = port if isinstance(port, int) else None
            row.setup = bool(event.get("setup"))
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
                self.note("gc --prune=now while the agents work: refused (exit 3)")
            else:
                self.note(f"gc --prune=now while the agents work: NOT refused (exit {proc.returncode})")
            return
        result = git.run(["gc", "-q", "--prune=now"], repo, check=False)
        self.note(f"git gc --prune=now while the agents work: ran (exit {result.returncode}); nothing stops it")

    def kill(self, repo: Path, index: int) -> None:
        row, proc = self.rows[index], self.procs[index]
        _kill_group(proc)
        row.killed = True
        row.phase = "SIGKILLed with work in flight"
        if self.progress is not None:
            self.progress.update()
        inside = "an open transaction" if self.mode == "gitxact" else "a half-done commit"
        self.note(f"{row.name} SIGKILLed with uncommitted work and {inside}")
        if self.mode == "raw":
            self.note("raw git has no recover: its worktree, branch and half-done commit stay as they are")
            self._pass_barriers(index)
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
        self.note(f"gitxact recover: {'ok' if self.recovered else 'FAILED'}, {len(self.recover_actions)} action(s)")
        for action in self.recover_actions:
            self.note(f"  {action}")
        row.phase = "killed; recovered" if self.recovered else "killed; recover failed"
        self._pass_barriers(index)

    def _pass_barriers(self, index: int) -> None:
        """The others land only once the killed agent is recovered: let them past its barriers."""
        if self.control is not None:
            for name in BARRIERS:
                (self.control / f"barrier-{name}.{self.rows[index].name}").touch()

    def stop(self) -> None:
        """Kill the agents not reaped yet. A reaped agent's pid may already belong to
        another process group: never signal it."""
        for proc in self.procs:
            if proc.returncode is None:
                _kill_group(proc)

    # -- checking ------------------------------------------------------------------------

    def summarize(self, repo: Path, control: Path, seconds: float, kept_at: str | None) -> DemoSummary:
        on_branches = _subjects_on_branches(repo)
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
        failed = [row.name for row in self.rows if not row.killed and (row.exit_code != 0 or row.phase != "done")]
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
            landed=sum(row.land == "landed" for row in self.rows),
            land_refused=sum(row.land == "refused" for row in self.rows),
            agents_failed=failed,
            trusted=self.trusted,
            setup_ran=sum(row.setup for row in self.rows),
            ports=[row.port for row in self.rows if row.port is not None],
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


def _kill_group(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def isolated(root: Path) -> Iterator[None]:
    """The demo's own git setup: nothing of the user's repository or git config reaches it.

    Started from inside a repository or a hook, inherited ``GIT_DIR`` & co would point
    the demo's git (and its agents') at the user's repository; a global
    ``core.hooksPath`` would make ``hooks install`` write into the user's hooks folder,
    ``commit.gpgsign`` would stop every commit. So while the demo runs, this process and
    its agents see no ``GIT_*``/``GITXACT_*`` variables, no system config, and a global
    config file of the demo's own. SIGTERM and SIGHUP end the demo like Ctrl-C does, so
    its agents are stopped and its folder removed.
    """
    saved = dict(os.environ)
    config = root / "gitconfig"
    config.write_text("[user]\n\tname = gitxact demo\n\temail = demo@gitxact.invalid\n[init]\n\tdefaultBranch = main\n")
    for name in list(os.environ):
        if name.startswith(("GIT_", "GITXACT_")):
            del os.environ[name]
    os.environ.update(GIT_CONFIG_GLOBAL=str(config), GIT_CONFIG_NOSYSTEM="1")
    handlers: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            handlers[signum] = signal.signal(signum, _exit_on_signal)
    try:
        yield
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
        os.environ.clear()
        os.environ.update(saved)


def _exit_on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


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
        with isolated(root):
            repo, trusted = make_repo(root, mode)
            control = root / "control"
            control.mkdir()
            supervisor = Supervisor(mode, agents, commits, bumps, None)
            supervisor.trusted = trusted
            if progress:
                supervisor.progress = Progress(supervisor.rows, sys.stderr, commits=commits, bumps=bumps)
                how = "gitxact (leases, gx, tdd, tracker)" if mode == "gitxact" else "raw git (no gitxact)"
                supervisor.note(f"gitxact demo: {agents} agents at once on {repo}, with {how}")
                if mode == "gitxact":
                    said = "trusted" if trusted else "NOT trusted"
                    supervisor.note(f"gitxact trust: {CONFIG_FILE} {said} (a setup command, a port per lease)")
            supervisor.spawn(repo, control)
            supervisor.follow(repo, limit=180 + 2 * agents * commits)
            return supervisor.summarize(repo, control, time.monotonic() - started, str(root) if keep else None)
    finally:
        if supervisor is not None:
            supervisor.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def _subjects_on_branches(repo: Path) -> set[str]:
    """Every commit subject reachable from a branch. Raw git racing in one repository can
    leave a branch naming an object that was never written (``bad object``): then each
    branch is read on its own and a broken one counts for nothing, which is what it kept."""
    whole = git.run(["log", "--branches", "--format=%s"], repo, check=False, read_only=True)
    if whole.ok:
        return set(whole.lines())
    found: set[str] = set()
    names = git.run(["for-each-ref", "--format=%(refname)", "refs/heads/"], repo, read_only=True).lines()
    for name in names:
        one = git.run(["log", "--format=%s", "--end-of-options", name], repo, check=False, read_only=True)
        if one.ok:
            found.update(one.lines())
    return found
