"""TDD sequences through the real CLI and library: verdicts, rollbacks, paths, concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact
from support.tx import fingerprint, gitxact_refs, head, make_work

from gitxact import RefusedError, Workspace
from gitxact.tx.tdd import CheckFailedError

#: Fails until impl.txt exists and says "done"; prints a marker so tests can see its output.
CHECK_SOURCE = (
    "import pathlib, sys\n"
    "print('CHECK-OUTPUT-MARKER')\n"
    "p = pathlib.Path('impl.txt')\n"
    "sys.exit(0 if p.exists() and p.read_text().startswith('done') else 1)\n"
)


def check_cmd() -> str:
    return f"{sys.executable} tests/check.py"


@pytest.fixture
def tdd_repo(repo: Path) -> Path:
    (repo / "tests").mkdir()
    (repo / "tests" / "check.py").write_text(CHECK_SOURCE)
    return repo


def commits(repo: Path) -> list[str]:
    return git("log", "--format=%s", cwd=repo).splitlines()


def test_happy_path_two_commits_then_refactor_three(tdd_repo: Path) -> None:
    repo = tdd_repo
    make_work(repo)
    base = len(commits(repo))
    red = gitxact("tdd", "red", "--check", check_cmd(), "tests/check.py", cwd=repo)
    assert red.returncode == 0, red.stderr
    assert "CHECK-OUTPUT-MARKER" in red.stderr, "check output streams to the terminal"
    assert "output kept in" in red.stderr
    log = Path(red.stderr.split("output kept in ")[1].split()[0])
    assert log.parent == repo / ".git" / "gitxact" / "logs"
    assert "CHECK-OUTPUT-MARKER" in log.read_text()
    (repo / "impl.txt").write_text("done v1\n")
    green = gitxact("tdd", "green", "--check", check_cmd(), "impl.txt", "--json", cwd=repo)
    assert green.returncode == 0, green.stderr
    assert json.loads(green.stdout)["check"]["passed"] is True
    assert commits(repo)[:2] == ["TDD GREEN: impl.txt", "TDD RED: tests/check.py"]
    assert len(commits(repo)) == base + 2
    (repo / "impl.txt").write_text("done v2, cleaner\n")
    refactor = gitxact("tdd", "refactor", "--check", check_cmd(), "impl.txt", "-m", "tidy impl", cwd=repo)
    assert refactor.returncode == 0, refactor.stderr
    assert gitxact("tdd", "done", cwd=repo).returncode == 0
    assert len(commits(repo)) == base + 3
    assert commits(repo)[0] == "tidy impl"
    # Only the PATHs were committed: the earlier uncommitted work is still uncommitted, as it was.
    status = git("status", "--porcelain", "--untracked-files=all", cwd=repo)
    assert sorted(status.splitlines()) == sorted(
        ["M  README", " M tracked.txt", " D doomed.txt", "?? notes/idea.md", "?? wip.txt"]
    )
    assert git("show", "--stat", "--format=", "HEAD~2", cwd=repo).split()[0] == "tests/check.py"
    assert gitxact_refs(repo) == []
    assert Workspace(repo).transactions.current() is None


def test_red_whose_check_passes_commits_nothing(tdd_repo: Path) -> None:
    repo = tdd_repo
    make_work(repo)
    before = fingerprint(repo)
    proc = gitxact("tdd", "red", "--check", "true", "tests/check.py", cwd=repo)
    assert_clean_error(proc, 3)
    assert "does not fail" in proc.stderr
    assert fingerprint(repo) == before, "nothing committed, nothing staged"
    assert gitxact_refs(repo) == []
    assert Workspace(repo).transactions.current() is None
    assert gitxact("tx", "begin", cwd=repo).returncode == 0, "no transaction was left open"


def test_green_whose_check_fails_rolls_the_whole_sequence_back(tdd_repo: Path) -> None:
    repo = tdd_repo
    make_work(repo)
    before = fingerprint(repo)
    assert gitxact("tdd", "red", "--check", check_cmd(), "tests/check.py", cwd=repo).returncode == 0
    (repo / "impl.txt").write_text("not yet\n")
    (repo / "scratch.txt").write_text("created during the sequence\n")
    proc = gitxact("tdd", "green", "--check", check_cmd(), "impl.txt", cwd=repo)
    assert_clean_error(proc, 1)
    assert "CHECK-OUTPUT-MARKER" in proc.stderr, "the check's output is shown"
    assert "rolled back" in proc.stderr
    assert ".log" in proc.stderr
    assert fingerprint(repo) == before, "HEAD at the start, earlier uncommitted work intact"
    assert not (repo / "scratch.txt").exists()
    # What the check undid was nobody's choice to throw away: it is kept, and named.
    (saved,) = gitxact_refs(repo)
    assert saved.startswith("refs/gitxact/snapshots/worktree@main/undone/tx-")
    assert saved.endswith("-green")
    assert saved in proc.stderr
    assert git("show", f"{saved}:impl.txt", cwd=repo) == "not yet\n"
    assert git("show", f"{saved}:scratch.txt", cwd=repo) == "created during the sequence\n"
    assert git("log", "-1", "--format=%s", f"{saved}^1", cwd=repo).startswith("TDD RED")


def test_refactor_failure_returns_to_green_and_abort_to_start(tdd_repo: Path) -> None:
    repo = tdd_repo
    start = fingerprint(repo)
    ws = Workspace(repo)
    seq = ws.tdd(check=check_cmd(), timeout=60)
    seq.red(["tests/check.py"])
    (repo / "impl.txt").write_text("done\n")
    seq.green(["impl.txt"])
    at_green = fingerprint(repo)
    (repo / "impl.txt").write_text("broken by refactor\n")
    (repo / "helper.txt").write_text("new helper\n")
    with pytest.raises(CheckFailedError, match="last passing commit"):
        seq.refactor(["impl.txt", "helper.txt"])
    assert fingerprint(repo) == at_green
    tx = ws.transactions.current()
    assert tx is not None
    assert tx.tdd is not None
    assert tx.tdd.step == "green"
    seq.abort()
    assert fingerprint(repo) == start
    assert ws.transactions.current() is None


def test_step_order_and_done_at_red_refused(tdd_repo: Path) -> None:
    repo = tdd_repo
    assert_clean_error(gitxact("tdd", "green", "--check", "true", "tests/check.py", cwd=repo), 1)
    assert_clean_error(gitxact("tdd", "done", cwd=repo), 1)
    assert gitxact("tdd", "red", "--check", check_cmd(), "tests/check.py", cwd=repo).returncode == 0
    assert_clean_error(gitxact("tdd", "done", cwd=repo), 3)
    assert_clean_error(gitxact("tdd", "refactor", "--check", "true", "tests/check.py", cwd=repo), 3)
    assert_clean_error(gitxact("tdd", "red", "--check", "false", "tests/check.py", cwd=repo), 3)
    assert_clean_error(gitxact("tx", "commit", cwd=repo), 3)
    assert gitxact("tdd", "abort", cwd=repo).returncode == 0


def test_timeouts(tdd_repo: Path) -> None:
    repo = tdd_repo
    hang = f"{sys.executable} -c 'import time; time.sleep(60)'"
    proc = gitxact("tdd", "red", "--check", hang, "--timeout", "0.5", "tests/check.py", cwd=repo)
    assert_clean_error(proc, 3)
    assert "hang" in proc.stderr
    assert gitxact_refs(repo) == []
    start = head(repo)
    assert gitxact("tdd", "red", "--check", check_cmd(), "tests/check.py", cwd=repo).returncode == 0
    (repo / "impl.txt").write_text("done\n")
    git("config", "gitxact.checkTimeout", "0.5", cwd=repo)
    proc = gitxact("tdd", "green", "--check", hang, "impl.txt", cwd=repo)
    assert_clean_error(proc, 1)
    assert "timed out" in proc.stderr
    assert head(repo) == start


def test_paths_are_validated(tdd_repo: Path, tmp_path: Path) -> None:
    repo = tdd_repo
    outside = tmp_path / "outside.txt"
    outside.write_text("x")
    (repo / "link").symlink_to(tmp_path)
    (repo / "ignored.log").write_text("x")
    (repo / ".gitignore").write_text("*.log\n")
    for bad in ["../outside.txt", str(outside), ".git/config", "link/outside.txt", "no-such-file", "ignored.log"]:
        proc = gitxact("tdd", "red", "--check", "false", bad, cwd=repo)
        assert_clean_error(proc, 2)
    assert_clean_error(gitxact("tdd", "red", "--check", "'unterminated", "tests/check.py", cwd=repo), 2)
    assert_clean_error(gitxact("tdd", "red", "--check", "no-such-program-xyz", "tests/check.py", cwd=repo), 2)
    assert_clean_error(
        gitxact("tdd", "red", "--shell", "--check", "no-such-program-xyz", "tests/check.py", cwd=repo), 2
    )
    assert gitxact_refs(repo) == []
    # From a subfolder, paths are relative to it; `..` that stays inside is fine.
    proc = gitxact("tdd", "red", "--shell", "--check", "exit 1", "../tests/check.py", cwd=repo / "tests")
    assert proc.returncode == 0, proc.stderr
    assert commits(repo)[0] == "TDD RED: tests/check.py"


def test_library_sequence_context_manager(tdd_repo: Path) -> None:
    repo = tdd_repo
    ws = Workspace(repo)
    start = head(repo)
    with ws.tdd(check=check_cmd()) as seq:
        seq.red(["tests/check.py"])
        (repo / "impl.txt").write_text("done\n")
        seq.green(["impl.txt"])
    assert len(commits(repo)) == 3
    assert ws.transactions.current() is None
    done_head = head(repo)
    (repo / "tests" / "more.py").write_text("x = 1\n")

    def end_at_red() -> None:
        with ws.tdd(check="false") as seq:
            seq.red(["tests/more.py"])

    with pytest.raises(RefusedError, match="ended at red"):
        end_at_red()
    assert head(repo) == done_head
    assert start != done_head


def test_change_during_the_check_is_detected(tdd_repo: Path) -> None:
    repo = tdd_repo
    sneaky = f"{sys.executable} -c \"import pathlib; pathlib.Path('tests/check.py').write_text('changed'); exit(1)\""
    proc = gitxact("tdd", "red", "--check", sneaky, "tests/check.py", cwd=repo)
    assert_clean_error(proc, 1)
    assert "changed while the check ran" in proc.stderr
    assert commits(repo) == ["initial"]
    assert gitxact_refs(repo) == []


def rendezvous_check(markers: Path, me: str, other: str) -> str:
    """A check that fails (red) only after seeing the other worktree's check running at the same time."""
    return (
        f'{sys.executable} -c "import pathlib, sys, time; d = pathlib.Path({str(markers)!r}); '
        f"(d / {me!r}).touch(); "
        f"end = time.monotonic() + 60\n"
        f"while not (d / {other!r}).exists() and time.monotonic() < end: time.sleep(0.01)\n"
        f'sys.exit(1 if (d / {other!r}).exists() else 0)"'
    )


@pytest.mark.slow
def test_two_worktrees_overlap_and_same_worktree_is_refused(tdd_repo: Path, tmp_path: Path) -> None:
    repo = tdd_repo
    git("add", "tests/check.py", cwd=repo)
    git("commit", "-q", "-m", "check", cwd=repo)
    trees = {name: tmp_path / name for name in ("wa", "wb")}
    for name, path in trees.items():
        git("worktree", "add", "-q", str(path), "-b", name, cwd=repo)
        (path / "tests" / "case.py").write_text(f"# {name}\n")
    markers = tmp_path / "markers"
    markers.mkdir()
    # Both red checks must be running at once to fail (as red requires); --lock-timeout 0
    # makes any wait on a lock the other holds an immediate exit 75 instead.
    procs = {
        name: subprocess.Popen(
            [
                *GITXACT,
                "tdd",
                "red",
                "--lock-timeout",
                "0",
                "--check",
                rendezvous_check(markers, name, other),
                "tests/case.py",
            ],
            cwd=trees[name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("wa", "wb"), ("wb", "wa"))
    }
    results = {}
    try:
        for name, proc in procs.items():
            results[name] = proc.communicate(timeout=120)
    finally:
        for proc in procs.values():  # reaped with their pipes closed, whatever happened above
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    for name, proc in procs.items():
        assert proc.returncode == 0, (name, *results[name])
    for path in trees.values():
        assert git("log", "-1", "--format=%s", cwd=path).strip() == "TDD RED: tests/case.py"

    # Same worktree: while wa's green check runs, a second step there is refused at once.
    release = tmp_path / "release"
    waiting = tmp_path / "waiting"
    blocker = (
        f'{sys.executable} -c "import pathlib, time; pathlib.Path({str(waiting)!r}).touch()\n'
        f'while not pathlib.Path({str(release)!r}).exists(): time.sleep(0.01)"'
    )
    (trees["wa"] / "impl.txt").write_text("done\n")
    first = subprocess.Popen(
        [*GITXACT, "tdd", "green", "--check", blocker, "impl.txt"],
        cwd=trees["wa"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not waiting.exists():
            assert first.poll() is None, first.communicate()
            os.sched_yield()
        for args in (["tdd", "green", "--check", "true", "impl.txt"], ["tx", "begin"], ["tdd", "abort"]):
            second = gitxact(*args, cwd=trees["wa"])
            assert_clean_error(second, 3)
            assert f"pid {first.pid}" in second.stderr
            assert "tdd green" in second.stderr
        listed = json.loads(gitxact("tx", "list", "--json", cwd=repo).stdout)["transactions"]
        busy = next(t for t in listed if t["worktree_id"] == "wa")
        assert busy["state"] == "busy"
    finally:
        release.touch()
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert gitxact("tdd", "done", cwd=trees["wa"]).returncode == 0
    assert git("fsck", "--no-progress", cwd=repo) is not None


def test_sequence_on_an_unborn_branch(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "test_x.txt").write_text("test\n")
    (repo / "wip.txt").write_text("wip\n")
    ws = Workspace(repo)
    seq = ws.tdd(check="test -f impl.txt", shell=True)
    seq.red(["test_x.txt"])
    (repo / "impl.txt").write_text("impl\n")
    seq.green(["impl.txt"])
    seq.done()
    assert commits(repo) == ["TDD GREEN: impl.txt", "TDD RED: test_x.txt"]
    assert git("status", "--porcelain", cwd=repo) == "?? wip.txt\n"


def test_tdd_inside_an_open_transaction(tdd_repo: Path) -> None:
    repo = tdd_repo
    ws = Workspace(repo)
    ws.transactions.begin("outer")
    (repo / "outer.txt").write_text("outer work\n")
    at_tdd_start = fingerprint(repo)
    assert gitxact("tdd", "red", "--check", check_cmd(), "tests/check.py", cwd=repo).returncode == 0
    assert gitxact("tdd", "abort", cwd=repo).returncode == 0
    assert fingerprint(repo) == at_tdd_start, "abort goes back to the sequence's start, not the transaction's"
    tx = ws.transactions.current()
    assert tx is not None
    assert tx.name == "outer"
    assert [sp.name for sp in tx.savepoints] == ["start"]
    ws.transactions.rollback()
    assert not (repo / "outer.txt").exists()
