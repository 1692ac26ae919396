"""Crash recovery: SIGKILL after every journal step, at random moments, and stale git locks.

Each trial copies a small template repository, sets up the uncommitted work an agent
would have, crashes a real ``gitxact`` process, runs ``gitxact recover`` and checks:
``git fsck`` clean, no stale lock files, HEAD at a state the journal allows, the
pre-sequence work recoverable (finishing or aborting the transaction gives it back
exactly), ``status`` exit 0 and the next ``tx``/``tdd`` command works.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.crashes import STRIDES
from support.proc import GITXACT, assert_clean_error, git, gitxact
from support.tx import fingerprint, gitxact_refs, head, make_work

from gitxact import Workspace
from gitxact.tx.journal import JournalFile

RED_CHECK = ["--shell", "--check", "test -f impl.txt"]  # fails until impl.txt exists
GREEN_PASS = ["--shell", "--check", "test -f impl.txt"]
GREEN_FAIL = ["--check", "false"]


@dataclass
class Trial:
    repo: Path
    original: dict[str, object]  # fingerprint before the sequence began
    allowed_heads: set[str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("template")
    repo = root / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README").write_text("hello\n")
    git("add", "README", cwd=repo)
    git("commit", "-q", "-m", "initial", cwd=repo)
    make_work(repo)
    (repo / "tests").mkdir()
    (repo / "tests" / "case.py").write_text("assert impl exists\n")
    return repo


def fresh(template: Path, where: Path) -> Path:
    repo = where / "repo"
    shutil.copytree(template, repo, symlinks=True)
    return repo


# -- scenarios: set up, then the command that crashes ---------------------------------------


def setup_begin(repo: Path) -> tuple[list[str], set[str]]:
    return ["tx", "begin"], {head(repo)}


def setup_rollback(repo: Path) -> tuple[list[str], set[str]]:
    start = head(repo)
    Workspace(repo).transactions.begin()
    (repo / "feature.txt").write_text("in the transaction\n")
    git("add", "feature.txt", cwd=repo)
    git("commit", "-q", "-m", "feature", cwd=repo)
    (repo / "later.txt").write_text("later\n")
    (repo / "wip.txt").write_text("changed\n")
    # Killed before its first journal step, the rollback never began: HEAD stays put.
    return ["tx", "rollback"], {start, head(repo)}


def setup_red(repo: Path) -> tuple[list[str], set[str]]:
    start = head(repo)
    return ["tdd", "red", *RED_CHECK, "tests/case.py"], {start}


def _after_red(repo: Path) -> set[str]:
    start = head(repo)
    proc = gitxact("tdd", "red", *RED_CHECK, "tests/case.py", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    (repo / "impl.txt").write_text("impl\n")
    return {start, head(repo)}


def setup_green_pass(repo: Path) -> tuple[list[str], set[str]]:
    return ["tdd", "green", *GREEN_PASS, "impl.txt"], _after_red(repo)


def setup_green_fail(repo: Path) -> tuple[list[str], set[str]]:
    return ["tdd", "green", *GREEN_FAIL, "impl.txt"], _after_red(repo)


SCENARIOS: dict[str, Callable[[Path], tuple[list[str], set[str]]]] = {
    "tx begin": setup_begin,
    "tx rollback": setup_rollback,
    "tdd red": setup_red,
    "tdd green (check passes)": setup_green_pass,
    "tdd green (check fails)": setup_green_fail,
}


# -- the invariants after recover --------------------------------------------------------------


def lock_files(repo: Path) -> list[str]:
    found = []
    for folder, _dirs, files in os.walk(repo / ".git"):
        if "gitxact" in Path(folder).relative_to(repo / ".git").parts[:1]:
            continue
        found.extend(os.path.join(folder, f) for f in files if f.endswith(".lock") or f.startswith("gitxact-index-"))
    return found


def journal_heads(repo: Path) -> set[str]:
    """Commits the journal records as completed or being completed (a TDD commit step)."""
    tx = JournalFile(Workspace(repo), "main").peek().tx
    if tx is None:
        return set()
    found = set(tx.tdd.commits) if tx.tdd else set()
    if tx.step is not None and tx.step.commit is not None:
        found.add(tx.step.commit)
    return found


def assert_recovered(trial: Trial, label: str) -> None:
    repo = trial.repo
    allowed = trial.allowed_heads | journal_heads(repo)
    proc = gitxact("recover", "--json", cwd=repo)
    assert proc.returncode == 0, (label, proc.stdout, proc.stderr)
    assert json.loads(proc.stdout)["ok"] is True
    fsck = subprocess.run(
        ["git", "fsck", "--no-progress", "--no-dangling"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert fsck.returncode == 0, (label, fsck.stdout, fsck.stderr)
    assert "error" not in fsck.stderr.lower(), (label, fsck.stderr)
    assert lock_files(repo) == [], (label, lock_files(repo))
    assert head(repo) in allowed, (label, head(repo), allowed)
    status = gitxact("status", cwd=repo)
    assert status.returncode == 0, (label, status.stderr)
    ws = Workspace(repo)
    tx = ws.transactions.current()
    if tx is not None:
        assert tx.step is None, (label, tx)
        if tx.tdd is not None:
            from gitxact.tx.tdd import abort

            abort(ws)
        else:
            ws.transactions.rollback()
    assert fingerprint(repo) == trial.original, (label, "the pre-sequence work is not back exactly")
    # Only the snapshots of what a failed check undid stay (kept on purpose, never a savepoint).
    left = [ref for ref in gitxact_refs(repo) if "/undone/" not in ref]
    assert left == [], (label, left)
    nxt = gitxact("tdd", "red", *RED_CHECK, "tests/case.py", cwd=repo)
    assert nxt.returncode == 0, (label, nxt.stderr)
    ws.transactions.rollback()


def run_crashing(repo: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GITXACT, *args], cwd=repo, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("stride", STRIDES)
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_crash_after_every_journal_step(template: Path, tmp_path: Path, scenario: str, stride: int) -> None:
    crashes = 0
    for step in range(1, 20, stride):
        where = tmp_path / f"n{step}"
        where.mkdir()
        repo = fresh(template, where)
        original = fingerprint(repo)
        args, allowed = SCENARIOS[scenario](repo)
        proc = run_crashing(repo, args, {"GITXACT_TEST_CRASH_AFTER_STEP": str(step)})
        if proc.returncode != -signal.SIGKILL:
            assert proc.returncode in (0, 1), (scenario, step, proc.stderr)
            break
        crashes += 1
        assert_recovered(Trial(repo, original, allowed), f"{scenario} step {step}")
    else:
        pytest.fail(f"{scenario} never finished: more than 19 journal steps?")
    assert crashes >= 2 // stride, f"{scenario}: only {crashes} step boundaries"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("scenario", "point"),
    [
        ("tx rollback", "rollback-after-refs"),
        ("tdd green (check fails)", "rollback-after-refs"),
        ("tx begin", "state-before-rename"),
        ("tdd green (check passes)", "state-before-rename"),
    ],
)
def test_crash_inside_a_step(template: Path, tmp_path: Path, scenario: str, point: str) -> None:
    repo = fresh(template, tmp_path)
    original = fingerprint(repo)
    args, allowed = SCENARIOS[scenario](repo)
    # The crash point must be reached by the command itself, not by the setup above.
    proc = run_crashing(repo, args, {"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_recovered(Trial(repo, original, allowed), f"{scenario} at {point}")


def _wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    raise AssertionError(f"process group {pgid} did not go away")


@pytest.mark.parametrize("rounds", [pytest.param(2, marks=pytest.mark.slow), pytest.param(6, marks=pytest.mark.stress)])
def test_random_sigkill_of_the_process_group(template: Path, tmp_path: Path, rounds: int) -> None:
    seed = int(os.environ.get("CRASH_TRIALS_SEED", "4242"))
    rng = random.Random(seed)
    # 4 scenarios x rounds trials (the first of each calibrates): 4 kills by default, 20 under -m stress.
    plan = ["tdd green (check passes)", "tdd green (check fails)", "tx rollback", "tx begin"] * rounds
    durations: dict[str, float] = {}
    killed = 0
    for number, scenario in enumerate(plan):
        if scenario not in durations:  # calibrate: how long the command takes undisturbed
            where = tmp_path / f"t{number}"
            where.mkdir()
            repo = fresh(template, where)
            original = fingerprint(repo)
            args, allowed = SCENARIOS[scenario](repo)
            started = time.monotonic()
            run_crashing(repo, args, {})
            durations[scenario] = time.monotonic() - started
            assert_recovered(Trial(repo, original, allowed | {head(repo)}), f"calibration {scenario}")
            continue
        # A run that finished before the kill (the machine got faster than the calibration
        # run) is recovered-checked all the same, then tried again aimed earlier: how long a
        # command takes is not what this test is about, so no trial depends on it.
        for attempt in range(4):
            where = tmp_path / f"t{number}-{attempt}"
            where.mkdir()
            repo = fresh(template, where)
            original = fingerprint(repo)
            args, allowed = SCENARIOS[scenario](repo)
            code = _kill_at_random(repo, args, rng.uniform(0.35, 1.0) * durations[scenario] / 2**attempt)
            label = f"seed {seed} trial {number}.{attempt} {scenario} (exit {code})"
            # A green that completed has its commit as the allowed "completed step".
            done_heads = {head(repo)} if code == 0 else set()
            assert_recovered(Trial(repo, original, allowed | done_heads), label)
            if code == -signal.SIGKILL:
                killed += 1
                break
    aimed = len(plan) - len(durations)  # the first trial of each scenario only calibrates
    assert killed == aimed, f"only {killed} of {aimed} trials were killed mid-way (seed {seed})"


def _kill_at_random(repo: Path, args: list[str], delay: float) -> int:
    """Start *args* in a process group of its own, SIGKILL the group after *delay*; its exit code."""
    proc = subprocess.Popen(
        [*GITXACT, *args], cwd=repo, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    # Most of a run is Python start-up; aim at the part where git and the journal work.
    time.sleep(delay)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    code = proc.wait()
    _wait_group_gone(proc.pid)
    return code


def test_stale_index_lock_removed_only_when_provably_orphaned(repo: Path) -> None:
    lock = repo / ".git" / "index.lock"
    lock.write_text("")
    # A live git in this repository could own it: kept, reported, exit 1.
    live = subprocess.Popen(["git", "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        proc = gitxact("recover", "--json", cwd=repo)
        assert proc.returncode == 1
        problems = [p for s in json.loads(proc.stdout)["steps"] for p in s["problems"]]
        assert any(f"pid {live.pid}" in p for p in problems), problems
        assert lock.exists()
    finally:
        live.communicate(input=b"", timeout=30)
    # A process holding the file open could be writing it: kept.
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; f = open({str(lock)!r}); sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        while not any(
            os.path.realpath(lock) == os.path.realpath(f"/proc/{holder.pid}/fd/{fd}")
            for fd in os.listdir(f"/proc/{holder.pid}/fd")
        ):
            time.sleep(0.01)
        assert gitxact("recover", cwd=repo).returncode == 1
        assert lock.exists()
    finally:
        holder.communicate(input=b"", timeout=30)
    # Nobody alive can own it: removed, and git works again.
    proc = gitxact("recover", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stdout
    assert not lock.exists()
    assert subprocess.run(["git", "add", "README"], cwd=repo, check=False).returncode == 0
    status = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    assert status["last_recover"]["ok"] is True


def test_dead_library_holder_is_rolled_back(repo: Path, tmp_path: Path) -> None:
    start = fingerprint(repo)
    ready = tmp_path / "ready"
    code = (
        "import pathlib, subprocess, time\n"
        "from gitxact import Workspace\n"
        f"repo = pathlib.Path({str(repo)!r})\n"
        "with Workspace(repo).transaction():\n"
        "    (repo / 'x.txt').write_text('x')\n"
        "    subprocess.run(['git', 'add', 'x.txt'], cwd=repo, check=True)\n"
        "    subprocess.run(['git', 'commit', '-qm', 'x'], cwd=repo, check=True)\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(120)\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code])
    try:
        while not ready.exists():
            assert worker.poll() is None
            time.sleep(0.01)
        held = gitxact("tx", "begin", cwd=repo)
        assert_clean_error(held, 3)
        assert "held open" in held.stderr or "already open" in held.stderr
        assert gitxact("recover", cwd=repo).returncode == 0
        assert Workspace(repo).transactions.current() is not None, "a live holder is left alone"
    finally:
        worker.kill()
        worker.wait()
    assert gitxact("recover", cwd=repo).returncode == 0
    assert fingerprint(repo) == start
    assert Workspace(repo).transactions.current() is None


def test_recover_does_not_overwrite_a_commit_made_after_the_crash(repo: Path) -> None:
    make_work(repo)
    original = fingerprint(repo)
    setup_rollback(repo)
    before = head(repo)
    proc = run_crashing(repo, ["tx", "rollback"], {"GITXACT_TEST_CRASH_AFTER_STEP": "1"})
    assert proc.returncode == -signal.SIGKILL
    git("commit", "-q", "--allow-empty", "-m", "someone else's commit", cwd=repo)
    proc = gitxact("recover", cwd=repo)
    assert_clean_error(proc, 1)
    assert "moved" in proc.stderr
    assert git("log", "-1", "--format=%s", cwd=repo).strip() == "someone else's commit", "their commit is kept"
    assert_clean_error(gitxact("tx", "rollback", cwd=repo), 3)
    # The person decides: here, move the branch back to where the step found it.
    git("update-ref", "refs/heads/main", before, cwd=repo)
    assert gitxact("recover", cwd=repo).returncode == 0
    assert fingerprint(repo) == original


def test_library_sequence_killed_during_its_check_is_rolled_back_in_one_pass(repo: Path, tmp_path: Path) -> None:
    make_work(repo)
    (repo / "test_new.txt").write_text("a new test\n")
    original = fingerprint(repo)
    waiting = tmp_path / "waiting"
    code = (
        "import pathlib, sys\n"
        "from gitxact import Workspace\n"
        f"ws = Workspace({str(repo)!r})\n"
        "with ws.tdd(shell=True) as seq:\n"
        "    seq.red(['test_new.txt'], check='false')\n"
        f"    seq.green(['README'], check='echo $$ > {waiting}.pid; touch {waiting}; sleep 120')\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.DEVNULL)
    try:
        while not waiting.exists():
            assert worker.poll() is None
            time.sleep(0.01)
    finally:
        worker.kill()
        worker.wait()
        with contextlib.suppress(OSError, ValueError):  # the check runs in its own process group
            os.killpg(int(Path(f"{waiting}.pid").read_text()), signal.SIGKILL)
    doc = json.loads(gitxact("recover", "--json", cwd=repo).stdout)
    actions = [a for s in doc["steps"] for a in s["actions"]]
    assert any("drop interrupted check" in a for a in actions), actions
    assert any("holder died" in a for a in actions), actions
    assert Workspace(repo).transactions.current() is None
    assert fingerprint(repo) == original
