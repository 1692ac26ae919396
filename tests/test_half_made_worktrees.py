"""A kill inside ``git worktree add`` leaves a half-made worktree; gitxact undoes it, whoever meets it first.

git 2.39's ``worktree add`` makes the admin folder (with ``locked``), writes a temporary
HEAD of all zeros, then runs ``git symbolic-ref HEAD`` (or ``update-ref``) as a child. A
stand-in for git in its exec path stops it right there, so the kill lands at that
exact point every time: the worktree's HEAD is all zeros and ``git status`` in it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.proc import GITXACT, git, gitxact, kill_group, wait_for_file

STAND_IN = """#!/bin/sh
case "$1 $2" in
  "symbolic-ref HEAD"|"update-ref HEAD") if [ -n "$STOP_AT" ]; then touch "$STOP_AT"; exec sleep 60; fi;;
esac
exec {real}/git "$@"
"""


@pytest.fixture
def exec_path(tmp_path: Path) -> Path:
    """git's exec path with its own ``git`` replaced by the stand-in above."""
    real = git("--exec-path", cwd=tmp_path).strip()
    folder = tmp_path / "exec-path"
    folder.mkdir()
    for entry in os.listdir(real):
        if entry != "git":
            (folder / entry).symlink_to(os.path.join(real, entry))
    stand_in = folder / "git"
    stand_in.write_text(STAND_IN.format(real=real))
    stand_in.chmod(0o755)
    return folder


def _kill_inside_worktree_add(repo: Path, exec_path: Path, tmp_path: Path) -> Path:
    stop = tmp_path / "stopped"
    env = {**os.environ, "GIT_EXEC_PATH": str(exec_path), "STOP_AT": str(stop)}
    proc = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "k"],
        cwd=repo,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_file(stop, "git worktree add to stop", proc)
    finally:
        kill_group(proc)  # type: ignore[arg-type]
    admin = repo / ".git" / "worktrees" / "k"
    assert (admin / "HEAD").read_text().strip() == "0" * 40, "killed with git's temporary HEAD in place"
    return admin


@pytest.mark.parametrize(
    "command",
    [
        ["recover"],
        ["doctor", "--fix"],
        ["worktree", "reap"],
        ["worktree", "release", "k", "--force"],
        ["worktree", "acquire", "k"],
    ],
)
def test_a_kill_inside_worktree_add_is_undone_by_whatever_meets_it(
    repo: Path, exec_path: Path, tmp_path: Path, command: list[str]
) -> None:
    gitxact("init", cwd=repo)
    admin = _kill_inside_worktree_add(repo, exec_path, tmp_path)
    proc = gitxact(*command, cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if command[-1] == "k":  # a new acquire: the half-made one is gone, a whole one stands
        assert (repo.parent / "repo.worktrees" / "k" / "README").is_file()
        assert git("-C", str(repo.parent / "repo.worktrees" / "k"), "status", "--porcelain", cwd=repo) == ""
    else:
        assert not admin.exists()
        assert not (repo.parent / "repo.worktrees" / "k").exists()
        leases = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"]
        assert leases == []
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert gitxact("doctor", cwd=repo).returncode == 0


def test_an_admin_folder_killed_before_git_wrote_anything_but_its_lock_is_removed(repo: Path) -> None:
    """The first thing `worktree add --lock` writes is the admin folder and its `locked` file."""
    gitxact("init", cwd=repo)
    admin = repo / ".git" / "worktrees" / "early"
    admin.mkdir(parents=True)
    (admin / "locked").write_text("gitxact lease early (owner pid 1 on elsewhere)")
    theirs = repo / ".git" / "worktrees" / "theirs"
    theirs.mkdir()
    (theirs / "locked").write_text("a person's own reason")
    proc = gitxact("recover", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not admin.exists(), "gitxact's own half-made admin folder is removed"
    assert theirs.exists(), "one gitxact did not lock is not its own: left alone"
