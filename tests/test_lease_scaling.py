"""What one more lease costs (issue 14): acquire, release, ``status`` and ``worktree list`` run
the same git commands at 1 lease as at many, but for the one ``git status`` per worktree
that tells dirty from clean (asked for with ``--dirty``, and by ``--json``). Counted (every
git gitxact starts goes through ``GITXACT_GIT``), not timed; and the batched ahead/behind agrees with git's own count.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from support.proc import git, gitxact

from gitxact import Workspace
from gitxact.worktrees import divergence

COUNTER = """#!/bin/sh
printf '%s\\n' "$*" >> "$GIT_CALLS"
exec {git} "$@"
"""


@pytest.fixture
def counting(tmp_path: Path) -> Path:
    """A stand-in git that writes down each command line, then runs the real one."""
    real = shutil.which("git")
    assert real is not None
    script = tmp_path / "counting-git"
    script.write_text(COUNTER.format(git=real))
    script.chmod(0o755)
    return script


def git_calls(repo: Path, counting: Path, *args: str) -> list[str]:
    """The git commands (first word) one gitxact command ran, in order."""
    log = counting.with_suffix(".log")
    log.unlink(missing_ok=True)
    proc = gitxact(*args, cwd=repo, env={"GITXACT_GIT": str(counting), "GIT_CALLS": str(log)})
    assert proc.returncode == 0, proc.stderr
    return [line.split(" ", 1)[0] for line in log.read_text().splitlines()] if log.exists() else []


def lease_more(repo: Path, first: int, count: int) -> None:
    ws = Workspace(repo)
    for n in range(first, first + count):
        ws.worktrees.acquire(f"held-{n}", owner_pid=os.getpid())


def acquire_and_release(repo: Path, counting: Path) -> tuple[list[str], list[str]]:
    log = counting.with_suffix(".log")
    env = {"GITXACT_GIT": str(counting), "GIT_CALLS": str(log)}
    log.unlink(missing_ok=True)
    proc = gitxact("worktree", "acquire", "probe", "--json", "--owner-pid", str(os.getpid()), cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    acquired = [line.split(" ", 1)[0] for line in log.read_text().splitlines()]
    token = json.loads(proc.stdout)["token"]
    log.unlink()
    proc = gitxact("worktree", "release", "probe", "--token", token, cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    released = [line.split(" ", 1)[0] for line in log.read_text().splitlines()]
    return acquired, released


def test_acquire_and_release_run_as_many_git_commands_at_six_leases_as_at_one(repo: Path, counting: Path) -> None:
    gitxact("init", cwd=repo)
    lease_more(repo, 0, 1)
    at_one = acquire_and_release(repo, counting)
    lease_more(repo, 1, 5)
    at_six = acquire_and_release(repo, counting)
    assert at_six == at_one
    assert at_one[0].count("worktree") == 2, "one `git worktree list`, one `git worktree add`"


@pytest.mark.parametrize("command", [["worktree", "list", "--json"], ["status", "--json"], ["status", "--dirty"]])
def test_listing_leases_adds_one_git_status_per_lease_and_nothing_else(
    repo: Path, counting: Path, command: list[str]
) -> None:
    gitxact("init", cwd=repo)
    lease_more(repo, 0, 1)
    at_one = git_calls(repo, counting, *command)
    lease_more(repo, 1, 5)
    at_six = git_calls(repo, counting, *command)
    assert sorted(at_six) == sorted(at_one + ["status"] * 5)
    assert at_one.count("status") == 1


@pytest.mark.parametrize("command", [["worktree", "list"], ["status"], ["worktree", "list", "--json", "--no-dirty"]])
def test_listing_without_dirty_runs_the_same_git_commands_at_six_leases_as_at_one(
    repo: Path, counting: Path, command: list[str]
) -> None:
    """The table people read leaves dirty/clean to ``--dirty``: then it is flat in the leases."""
    gitxact("init", cwd=repo)
    lease_more(repo, 0, 1)
    at_one = git_calls(repo, counting, *command)
    lease_more(repo, 1, 5)
    assert git_calls(repo, counting, *command) == at_one
    assert "status" not in at_one


def test_dirty_ahead_and_behind_are_still_right_for_every_lease(repo: Path) -> None:
    gitxact("init", cwd=repo)
    lease_more(repo, 0, 3)
    ws = Workspace(repo)
    paths = {lease.agent: Path(lease.path) for lease in ws.worktrees.list().leases}
    (paths["held-0"] / "new.txt").write_text("x\n")
    git("add", "new.txt", cwd=paths["held-0"])
    git("commit", "-q", "-m", "ahead", cwd=paths["held-0"])
    (paths["held-1"] / "wip.txt").write_text("y\n")
    git("commit", "-q", "--allow-empty", "-m", "main moves", cwd=repo)
    listed = {info.agent: (info.dirty, info.ahead, info.behind) for info in ws.worktrees.list().leases}
    assert listed == {"held-0": (False, 1, 1), "held-1": (True, 0, 1), "held-2": (False, 0, 1)}


def test_batched_ahead_behind_matches_git_rev_list_for_every_shape(repo: Path) -> None:
    def commit(message: str) -> None:
        git("commit", "-q", "--allow-empty", "-m", message, cwd=repo)

    start = git("rev-parse", "HEAD", cwd=repo).strip()
    git("branch", "same", cwd=repo)
    git("checkout", "-q", "-b", "ahead", cwd=repo)
    commit("a1")
    commit("a2")
    git("checkout", "-q", "-b", "forked", "main", cwd=repo)
    commit("f1")
    git("checkout", "-q", "main", cwd=repo)
    commit("m1")
    git("checkout", "-q", "-b", "merged", cwd=repo)
    git("merge", "-q", "--no-ff", "-m", "merge", "ahead", cwd=repo)
    git("checkout", "-q", "--orphan", "unrelated", cwd=repo)
    commit("u1")
    git("checkout", "-q", "main", cwd=repo)
    pairs = [
        divergence.Pair("main", start, branch) for branch in ("same", "ahead", "forked", "merged", "unrelated", "main")
    ]
    pairs += [
        divergence.Pair("forked", None, "merged"),
        divergence.Pair("gone", start, "ahead"),  # a base branch deleted since: its start commit
        divergence.Pair("gone", None, "ahead"),  # neither: unknown
        divergence.Pair("main", start, "no-such-branch"),
    ]
    counts = divergence.ahead_behind(repo / ".git", pairs)
    for pair in pairs:
        base = pair.base if pair.base != "gone" else pair.base_commit
        if base is None or pair.branch == "no-such-branch":
            assert pair not in counts
            continue
        left, right = git("rev-list", "--left-right", "--count", f"{base}...{pair.branch}", "--", cwd=repo).split()
        assert counts[pair] == (int(right), int(left)), pair
