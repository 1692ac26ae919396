"""`gitxact demo`: the README's main job. With gitxact nothing is lost; with --raw the
same agents lose commits and updates. Real processes, real git, a real SIGKILL."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.proc import GITXACT, ROOT, assert_clean_error, git, gitxact

pytestmark = pytest.mark.slow

SGR_COLOR = re.compile(r"\x1b\[[0-9;]*m")


def demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the demo with its temporary folder inside tmp_path, so a leftover would show."""
    return gitxact("demo", *args, cwd=tmp_path, env={"TMPDIR": str(tmp_path), **(env or {})}, timeout=170)


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.glob("gitxact-demo-*"))


def readme_demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The README's `scripts/demo` when this suite runs in its venv (as `.ci/run` does), else the CLI."""
    if not list(Path(sys.prefix).glob(".gitxact-installed-*")):
        return demo(tmp_path, *args)
    env = {**os.environ, "GITXACT_VENV": sys.prefix, "TMPDIR": str(tmp_path)}
    script = str(ROOT / "scripts" / "demo")
    return subprocess.run(
        [script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170, check=False
    )


def test_demo_with_gitxact_loses_nothing(tmp_path: Path) -> None:
    proc = readme_demo(tmp_path, "--agents", "3", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)  # stdout is the one document, progress stays off it
    assert doc["schema"] == 1
    assert doc["mode"] == "gitxact"
    assert doc["lost"] == 0
    assert doc["agents_failed"] == []
    assert doc["git_failures"] == 0
    # Every agent: red + green + 5 shared commits; all made, all found on a branch.
    assert doc["commits_planned"] == doc["commits_landed"] == 3 * (2 + 5)
    # The committed .gitxact.toml, trusted by `gitxact trust`: each lease's setup wrote the
    # agent's name and port, and each agent listened on a port of its own.
    assert doc["trusted"] is True
    assert doc["setup_ran"] == 3
    assert len(doc["ports"]) == len(set(doc["ports"])) == 3
    assert doc["tracker_kept"] == doc["tracker_expected"] == 3 * 25
    assert doc["tdd_rollbacks"] == 1
    assert doc["gc_attempts"] == doc["gc_refused"] == 1
    assert doc["killed"] == 1
    assert (doc["landed"], doc["land_refused"]) == (1, 1), "agent-1 landed, agent-2's broken refactor refused"
    assert doc["recovered"] is True
    assert any("reap agent-3" in action for action in doc["recover_actions"]), doc["recover_actions"]
    assert doc["snapshots"]
    assert all(ref.startswith("refs/gitxact/snapshots/agent-3/") for ref in doc["snapshots"])
    assert doc["leases_left"] == 0
    assert doc["worktrees_left"] == 0
    assert doc["fsck_clean"] is True
    rows = {row["name"]: row for row in doc["rows"]}
    assert [rows[n]["role"] for n in ("agent-1", "agent-2", "agent-3")] == ["steady", "flaky", "crash"]
    assert rows["agent-2"]["rollbacks"] == 1
    assert [rows[n]["land"] for n in ("agent-1", "agent-2", "agent-3")] == ["landed", "refused", "-"]
    assert rows["agent-3"]["killed"] is True
    assert sorted(row["port"] for row in rows.values()) == sorted(doc["ports"])
    assert all(row["setup"] for row in rows.values())
    assert doc["repository"] is None
    assert leftovers(tmp_path) == []


def test_the_same_agents_with_raw_git_lose_work(tmp_path: Path) -> None:
    proc = demo(tmp_path, "--agents", "3", "--json", "--raw")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # showing the failures is the point
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "raw"
    # Shared-worktree commits hit index.lock and a read-modify-write counter drops updates.
    assert doc["lost"] > 0
    assert doc["git_failures"] + (doc["tracker_expected"] - doc["tracker_kept"]) > 0
    assert doc["lost"] == (doc["commits_planned"] - doc["commits_landed"]) + (
        doc["tracker_expected"] - doc["tracker_kept"]
    )
    assert doc["gc_attempts"] == 1
    assert doc["gc_refused"] == 0
    assert doc["killed"] == 1
    assert doc["recovered"] is False
    assert (doc["trusted"], doc["setup_ran"], doc["ports"]) == (False, 0, []), "raw git runs no setup"
    assert doc["worktrees_left"] >= 1  # at least the killed agent's worktree is orphaned
    assert leftovers(tmp_path) == []


def test_human_output_off_a_terminal_has_no_escape_codes_and_keep_leaves_the_repository(tmp_path: Path) -> None:
    # One demo run for both (each run is several seconds of agents): the human output, and
    # --keep's repository to look at afterwards.
    proc = demo(tmp_path, "--agents", "2", "--commits", "1", "--bumps", "3", "--keep", env={"NO_COLOR": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    # Off a terminal the progress is a story: one line per change of phase.
    assert "  agent-1: done" in proc.stderr.splitlines()
    assert "agent-2 SIGKILLed" in proc.stderr
    assert "gitxact recover: ok" in proc.stderr
    assert re.search(r"^  lost\s+0$", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  lease setup\s+2 of 2 leases: .* \(trusted with `gitxact trust`\)$", proc.stdout, re.M)
    assert re.search(r"^  ports\s+distinct: \d+, \d+ ", proc.stdout, re.M), proc.stdout
    assert re.search(r"^  commits kept on a branch\s+6 of 6 the agents made", proc.stdout, re.M), proc.stdout
    assert "gitxact trust: .gitxact.toml trusted" in proc.stderr
    assert "gitxact demo --raw" in proc.stdout
    found = re.search(r"^kept: (\S+) \(the repository is project/", proc.stdout, re.M)
    assert found, proc.stdout
    kept = Path(found[1])
    assert kept.parent == tmp_path
    assert (kept / "project" / ".git").is_dir()
    subjects = git("log", "--branches", "--format=%s", cwd=kept / "project").splitlines()
    assert "agent-1: note 1" in subjects
    # agent-1 is the flaky one (of 2): its first sequence was rolled back, its second landed.
    assert "agent-1: red: test answer() (try 1)" not in subjects
    assert "agent-1: red: test answer() (try 2)" in subjects
    assert "agent-1: green: answer() (try 2)" in subjects


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """stdout and stderr on one pseudo-terminal, read while the demo runs (it redraws a lot)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 150
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the other side closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
        code = proc.wait(timeout=60)
    assert code == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode()


@pytest.mark.parametrize("no_color", ["", "1"])
def test_on_a_terminal_progress_is_redrawn_and_colors_follow_no_color(tmp_path: Path, no_color: str) -> None:
    env = {**os.environ, "NO_COLOR": no_color, "TMPDIR": str(tmp_path)}
    out = on_a_terminal([*GITXACT, "demo", "--agents", "2", "--commits", "1", "--bumps", "2"], tmp_path, env)
    assert "\x1b[J" in out  # the agents' lines are redrawn in place
    assert bool(SGR_COLOR.search(out)) is (no_color == "")
    assert "lost" in out


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    for args in (["--agents", "1"], ["--agents", "x"], ["--bumps", "0"]):
        proc = demo(tmp_path, *args)
        assert_clean_error(proc, 2)
    assert leftovers(tmp_path) == []
