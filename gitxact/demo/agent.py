"""One demo agent: a separate process that works as a coding agent does.

It types commands (``gitxact tdd``, ``gx``; or plain ``git`` in raw mode) and reports
each thing it did as one JSON line on stdout, which the supervisor turns into the live
progress and the ledger: a commit is reported with the message it was meant to land
under, and whether the agent saw it succeed.

Run as ``python -m gitxact.demo.agent MODE REPO CONTROL NAME ROLE COMMITS BUMPS AGENTS``.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from gitxact.demo.scenario import BARRIERS, LEASE_FILE, Mode, Role

#: How long a raw agent "thinks" between reading the JSON counter and writing it back.
THINK = 0.002
#: The landing queue's check: every agent's test that is on the candidate.
LAND_CHECK = "import glob, runpy\nfor path in sorted(glob.glob('check_*.py')):\n    runpy.run_path(path)"


def tool(name: str) -> list[str]:
    """The argv of gitxact's own commands, from the same installation as this process."""
    found = Path(sys.executable).parent / name
    if found.exists():
        return [str(found)]
    return [sys.executable, "-m", "gitxact"] + (["git"] if name == "gx" else [])


def say(**event: object) -> None:
    print(json.dumps(event), flush=True)


@dataclass
class Agent:
    mode: Mode
    repo: Path
    control: Path
    name: str
    role: Role
    commits: int
    bumps: int
    worktree: Path | None = None
    token: str | None = None
    last_code: int = 0
    env: dict[str, str] = field(init=False)
    #: The socket listening on the lease's port while the agent works.
    server: socket.socket | None = None

    def __post_init__(self) -> None:
        self.env = {**os.environ, "GITXACT_AGENT": self.name, "PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}

    # -- running commands ---------------------------------------------------------------

    def run(self, argv: list[str], cwd: Path, *, expect_failure: bool = False) -> bool:
        """Run one command; a failure nobody planned is counted (and its first line shown)."""
        proc = subprocess.run(argv, cwd=cwd, env=self.env, capture_output=True, text=True, check=False)
        self.last_code = proc.returncode
        if proc.returncode != 0 and not expect_failure:
            first = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()[0]
            say(event="failure", command=" ".join([Path(argv[0]).name, *argv[1:2]]), error=first[:160])
        return proc.returncode == 0

    def git(self, *args: str, cwd: Path) -> bool:
        return self.run(["git", *args], cwd)

    def gx(self, *args: str, cwd: Path) -> bool:
        return self.run([*tool("gx"), *args], cwd)

    def barrier(self, name: str, agents: int) -> None:
        """Wait until every agent got here (or 60 s passed: a dead agent must not hang the rest)."""
        (self.control / f"barrier-{name}.{self.name}").touch()
        deadline = time.monotonic() + 60
        while len(list(self.control.glob(f"barrier-{name}.*"))) < agents and time.monotonic() < deadline:
            time.sleep(0.005)

    # -- the plan ------------------------------------------------------------------------

    def main(self, agents: int) -> int:
        try:
            self.acquire()
            if self.worktree is None:
                say(event="phase", text="no worktree: gave up")
                return 1
            self.tdd()
            self.barrier("commits", agents)
            self.shared_commits()
            self.barrier("tracker", agents)
            self.bump_tracker()
            if self.role == "crash":
                self.crash()
            self.barrier("landing", agents)  # after the crashed agent was recovered
            self.land()
            self.release()
        finally:
            for name in BARRIERS:  # an agent that stops early must not hold the others up
                (self.control / f"barrier-{name}.{self.name}").touch()
            if self.server is not None:
                self.server.close()
        say(event="phase", text="done")
        return 0

    def acquire(self) -> None:
        say(event="phase", text="getting a worktree")
        if self.mode == "gitxact":
            from gitxact.workspace import Workspace

            doc = Workspace(self.repo, agent=self.name).worktrees.acquire(self.name)
            self.worktree, self.token = Path(doc.path), doc.token
            self.env["GITXACT_LEASE_TOKEN"] = doc.token or ""
            self.env.update(doc.env)  # GITXACT_PORT & co, as `eval "$(gitxact worktree env AGENT)"` gives them
            say(event="phase", text=f"leased {doc.branch}", acquired=True)
            self.serve(doc.ports)
            return
        path = self.repo.parent / f"{self.repo.name}.worktrees" / self.name
        if self.git("worktree", "add", "-q", "-b", f"agents/{self.name}", str(path), cwd=self.repo):
            self.worktree = path
            say(event="phase", text=f"added agents/{self.name}", acquired=True)

    def serve(self, ports: list[int]) -> None:
        """Use what the lease's setup wrote: its name and port, read back from the file, must
        be this agent's and its lease's; then listen on the port until the agent ends (a dev
        server's stand-in), which only one process on the host can do."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - acquire() set it
        written: dict[str, str] = {}
        try:
            for item in (wt / LEASE_FILE).read_text().split():
                name, _, value = item.partition("=")
                written[name] = value
        except OSError:
            pass
        port = int(written["port"]) if written.get("port", "").isdigit() else None
        setup = written.get("agent") == self.name and port is not None and ports[:1] == [port]
        if port is not None:
            try:
                self.server = socket.create_server(("127.0.0.1", port))
            except OSError as exc:
                setup = False
                say(event="failure", command="listen", error=f"port {port}: {exc}")
        say(event="provisioned", port=port, setup=setup)
        say(event="phase", text=f"setup ran: listening on port {port}" if setup else "setup did not run")

    def tdd(self) -> None:
        """Red then green. The flaky agent's first green fails its check: with gitxact the
        sequence is rolled back (test and red commit gone) and done again; with raw git the
        red commit and the broken code stay, and the agent fixes the code on top."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        module = self.name.replace("-", "_")
        test, code = f"check_{module}.py", f"{module}.py"
        check = f"{shlex.quote(sys.executable)} {test}"
        flaky = self.role == "flaky"
        tries = " (try 1)" if flaky else ""
        red, green = f"{self.name}: red: test answer(){tries}", f"{self.name}: green: answer(){tries}"
        say(event="phase", text="tdd red")
        (wt / test).write_text(f"from {module} import answer\n\nassert answer() == 42, answer()\n")
        if not self.step("red", test, check, red):
            return
        say(event="phase", text="tdd green")
        (wt / code).write_text(f"def answer() -> int:\n    return {41 if flaky else 42}\n")
        if not flaky:
            if self.step("green", code, check, green):
                self.finish_tdd([red, green])
            return
        self.step("green", code, check, green, expect_failure=True)
        green = f"{self.name}: green: answer() (try 2)"
        if self.mode == "gitxact":
            if not self.rolled_back(red, code):
                return
            say(event="rollback", text="green failed: sequence rolled back")
            red = f"{self.name}: red: test answer() (try 2)"
            say(event="phase", text="tdd red (try 2)")
            (wt / test).write_text(f"from {module} import answer\n\nassert answer() == 42, answer()\n")
            if not self.step("red", test, check, red):
                return
        else:
            say(event="phase", text="green failed: red commit and broken code stay")
        say(event="phase", text="tdd green (try 2)")
        (wt / code).write_text("def answer() -> int:\n    return 42\n")
        if self.step("green", code, check, green):
            self.finish_tdd([red, green])

    def rolled_back(self, red: str, code: str) -> bool:
        """Check, not assume, that the failed green undid the sequence: exit 1, the red commit
        gone from the branch and the code written after it gone from the worktree (the test,
        written before the sequence began, is back to uncommitted, as it was then)."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        log = subprocess.run(
            ["git", "log", "--format=%s"], cwd=wt, env=self.env, capture_output=True, text=True, check=False
        )
        if (
            self.last_code == 1
            and log.returncode == 0
            and red not in log.stdout.splitlines()
            and not (wt / code).exists()
        ):
            return True
        say(event="failure", command="tdd green", error=f"exit {self.last_code}, but the sequence was not rolled back")
        return False

    def step(self, op: str, path: str, check: str, message: str, *, expect_failure: bool = False) -> bool:
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        if self.mode == "gitxact":
            argv = [*tool("gitxact"), "tdd", op, "--check", check, "-m", message, path]
            return self.run(argv, wt, expect_failure=expect_failure)
        # Raw git: run the check, and commit when it did what the step needs.
        passed = (
            subprocess.run(shlex.split(check), cwd=wt, env=self.env, capture_output=True, check=False).returncode == 0
        )
        if passed != (op != "red"):
            if not expect_failure:
                say(event="failure", command=f"{op} check", error="the check did not do what the step needs")
            return False
        ok = self.git("add", path, cwd=wt) and self.git("commit", "-q", "-m", message, cwd=wt)
        if op == "red":
            say(event="commit", message=message, ok=ok)
        return ok

    def finish_tdd(self, messages: list[str]) -> None:
        """A sequence's commits count once it is done (until then a rollback may undo them)."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        ok = self.run([*tool("gitxact"), "tdd", "done"], wt) if self.mode == "gitxact" else True
        # Raw git has no sequence: its red commit was reported when it was made.
        for message in messages if self.mode == "gitxact" else messages[1:]:
            say(event="commit", message=message, ok=ok)
        say(event="phase", text="tdd done")

    def shared_commits(self) -> None:
        say(event="phase", text="committing in the shared worktree")
        notes = self.repo / "notes"
        notes.mkdir(exist_ok=True)
        for i in range(1, self.commits + 1):
            name = f"notes/{self.name}-{i}.txt"
            (self.repo / name).write_text(f"{self.name} note {i}\n")
            message = f"{self.name}: note {i}"
            commit = self.gx if self.mode == "gitxact" else self.git
            ok = commit("add", name, cwd=self.repo) and commit("commit", "-q", "-m", message, "--", name, cwd=self.repo)
            say(event="commit", message=message, ok=ok)

    def bump_tracker(self) -> None:
        say(event="phase", text="bumping the shared counter")
        if self.mode == "gitxact":
            from gitxact.workspace import Workspace

            tracker = Workspace(self.repo, agent=self.name).tracker
            for _ in range(self.bumps):
                tracker.incr("tests.run")
                say(event="bump")
            return
        counter = self.control / "tracker.json"
        for _ in range(self.bumps):
            try:
                data = json.loads(counter.read_text() or "{}")
            except (OSError, ValueError):
                data = {}
            time.sleep(THINK)
            data["tests.run"] = int(data.get("tests.run", 0)) + 1
            counter.write_text(json.dumps(data))
            say(event="bump")

    def land(self) -> None:
        """Land the TDD branch onto main through the queue, checked with every agent's test.
        The flaky agent slips in a last-minute refactor that breaks its own test: the
        queue's check refuses it (exit 3) and main never sees it; the others land."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        if self.mode == "raw":
            say(event="phase", text="no queue: the branch stays unlanded")
            return
        if self.role == "flaky":
            module = self.name.replace("-", "_")
            (wt / f"{module}.py").write_text("def reply() -> int:\n    return 42\n")
            self.gx("commit", "-q", "-m", f"{self.name}: rename answer() to reply()", f"{module}.py", cwd=wt)
        say(event="phase", text="landing onto main")
        check = f"{shlex.quote(sys.executable)} -c {shlex.quote(LAND_CHECK)}"
        argv = [*tool("gitxact"), "land", "--onto", "main", "--check", check, "--timeout", "300"]
        landed = self.run(argv, wt, expect_failure=self.role == "flaky")
        outcome = "landed" if landed else "refused" if self.last_code == 3 else "failed"
        say(event="land", outcome=outcome)
        say(event="phase", text=f"{outcome} onto main")

    def crash(self) -> None:
        """Leave work in flight (uncommitted, and a commit inside an open transaction), then wait to be killed."""
        wt = self.worktree
        assert wt is not None  # noqa: S101 - main() checked
        (wt / "unsaved-idea.txt").write_text("an idea not committed yet\n")
        say(event="phase", text="work in flight")
        if self.mode == "gitxact":
            self.run([*tool("gitxact"), "tx", "begin", "refactor"], wt)
        (wt / "half-done.txt").write_text("half of a refactoring\n")
        commit = self.gx if self.mode == "gitxact" else self.git
        commit("add", "half-done.txt", cwd=wt)
        commit("commit", "-q", "-m", f"{self.name}: half a refactoring", cwd=wt)
        say(event="ready-to-die")
        time.sleep(120)

    def release(self) -> None:
        say(event="phase", text="releasing the worktree")
        if self.mode == "gitxact":
            from gitxact.workspace import Workspace

            Workspace(self.repo, agent=self.name).worktrees.release(self.name, token=self.token)
        else:
            self.git("worktree", "remove", str(self.worktree), cwd=self.repo)


def main(argv: list[str]) -> int:
    mode, repo, control, name, role, commits, bumps, agents = argv
    run_as: Mode = "raw" if mode == "raw" else "gitxact"
    part: Role = role if role in ("steady", "flaky", "crash") else "steady"  # type: ignore[assignment]
    agent = Agent(run_as, Path(repo), Path(control), name=name, role=part, commits=int(commits), bumps=int(bumps))
    try:
        return agent.main(int(agents))
    except Exception as exc:  # noqa: BLE001 - an agent that breaks is reported, the demo goes on
        say(event="failure", command="agent", error=str(exc)[:160])
        say(event="phase", text=f"failed: {type(exc).__name__}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
