"""The command line as a user meets it: paths, help, init, status."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact

from gitxact.cli.main import COMMANDS


def test_dash_c_outside_a_repository(tmp_path: Path) -> None:
    proc = gitxact("-C", str(tmp_path), "status", cwd=tmp_path)
    assert_clean_error(proc, 2)
    assert len(proc.stderr.strip().splitlines()) <= 2
    assert "not inside a git repository" in proc.stderr


def test_dash_c_missing_path(tmp_path: Path) -> None:
    proc = gitxact("-C", str(tmp_path / "nope"), "status", cwd=tmp_path)
    assert_clean_error(proc, 2)
    assert "no such directory" in proc.stderr


def test_dash_c_from_elsewhere_and_subfolder(repo: Path, tmp_path: Path) -> None:
    (repo / "sub").mkdir()
    proc = gitxact("-C", str(repo / "sub"), "status", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == 1
    assert doc["repository"]["worktree"] == str(repo)


def test_init_is_idempotent(repo: Path) -> None:
    first = json.loads(gitxact("init", "--json", cwd=repo).stdout)
    second = json.loads(gitxact("init", "--json", cwd=repo).stdout)
    assert first["created"] is True
    assert second["created"] is False
    assert first["state_dir"] == str(repo / ".git" / "gitxact")
    assert git("status", "--porcelain", cwd=repo) == "", "state is never in the worktree"


def test_state_is_shared_by_linked_worktrees(repo: Path, tmp_path: Path) -> None:
    git("worktree", "add", "-q", str(tmp_path / "wt"), "-b", "side", cwd=repo)
    assert gitxact("tracker", "incr", "n", cwd=tmp_path / "wt").returncode == 0
    assert gitxact("tracker", "get", "n", cwd=repo).stdout.strip() == "1"
    doc = json.loads(gitxact("status", "--json", cwd=tmp_path / "wt").stdout)
    assert doc["repository"]["worktree_id"] == "wt"
    assert doc["repository"]["common_dir"] == str(repo / ".git")


def test_relative_git_dir_from_a_hook_is_made_absolute(repo: Path, tmp_path: Path) -> None:
    # Git exports GIT_DIR=.git (relative) to hooks; gitxact must still find the repo.
    env = {**os.environ, "GIT_DIR": ".git"}
    proc = subprocess.run(
        [*GITXACT, "status", "--json"], cwd=repo, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["repository"]["common_dir"] == str(repo / ".git")


def test_git_missing_from_path(repo: Path) -> None:
    proc = gitxact("status", cwd=repo, env={"PATH": "/nonexistent"})
    assert_clean_error(proc, 1)
    assert "git was not found" in proc.stderr


def test_bad_config_value_is_usage_error(repo: Path) -> None:
    git("config", "gitxact.lockTimeout", "soon", cwd=repo)
    proc = gitxact("status", cwd=repo)
    assert_clean_error(proc, 2)
    assert "gitxact.lockTimeout" in proc.stderr


def test_unknown_command_and_bad_option(repo: Path) -> None:
    assert_clean_error(gitxact("frobnicate", cwd=repo), 2)
    assert_clean_error(gitxact("lock", "--timeout", "-1", "--", "true", cwd=repo), 2)


#: `gitxact git --help` is git's own help (every word goes to git, --help included);
#: its own help text shows in `gitxact --help` (tests/test_gx.py checks both).
PASSTHROUGH = {"git"}


@pytest.mark.parametrize("name", sorted(set(COMMANDS) - PASSTHROUGH))
def test_every_command_has_help_with_an_example(repo: Path, name: str) -> None:
    proc = gitxact(name, "--help", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "Example" in proc.stdout


def test_status_human_and_json(repo: Path) -> None:
    gitxact("tracker", "incr", "n", cwd=repo)
    human = gitxact("status", cwd=repo)
    assert human.returncode == 0
    assert "locks" in human.stdout
    assert "\x1b[" not in human.stdout, "no colors when not on a TTY"
    doc = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    assert {"schema", "repository", "locks", "state_files", "lock_times"} <= set(doc)


def test_a_crash_log_goes_only_to_a_folder_private_to_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import tempfile

    from gitxact import error_handler

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(error_handler, "log_dir", None)
    shared = tmp_path / f"gitxact-{os.getuid()}"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # made first by someone else, open to all: not ours to write a traceback into

    def boom() -> int:
        raise RuntimeError("a bug")

    assert error_handler.guarded(boom) == 1
    assert not (shared / "crash.log").exists()
    shared.chmod(0o700)
    assert error_handler.guarded(boom) == 1
    assert "RuntimeError: a bug" in (shared / "crash.log").read_text()


def test_bare_gitxact_prints_its_help_without_an_error(tmp_path: Path) -> None:
    proc = gitxact(cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: gitxact")
    assert "error" not in proc.stderr


def test_an_unknown_command_suggests_the_nearest_one(tmp_path: Path) -> None:
    proc = gitxact("wrktree", "list", cwd=tmp_path)
    assert_clean_error(proc, 2)
    assert "Did you mean 'worktree'?" in proc.stderr


def test_a_deleted_current_folder_is_a_clear_error(repo: Path, tmp_path: Path) -> None:
    gone = tmp_path / "gone"

    def inside_gone(*args: str) -> subprocess.CompletedProcess[str]:
        gone.mkdir()
        script = f'cd "{gone}" && rmdir "{gone}" && exec "$@"'
        return subprocess.run(
            ["sh", "-c", script, "sh", *GITXACT, *args], capture_output=True, text=True, check=False, timeout=120
        )

    version = inside_gone("--version")
    assert version.returncode == 0
    assert "gitxact, version" in version.stdout
    status = inside_gone("status")
    assert_clean_error(status, 2)
    assert "the current folder no longer exists" in status.stderr
    assert inside_gone("-C", str(repo), "status").returncode == 0, "an absolute -C needs no current folder"


def test_hook_honours_dash_c_like_running_inside(repo: Path, tmp_path: Path) -> None:
    from support.leases import acquire

    here = acquire(repo, "alice")
    env = {"GITXACT_AGENT": "bob"}
    inside = gitxact("hook", "pre-commit", cwd=here, env=env)
    outside = gitxact("-C", str(here), "hook", "pre-commit", cwd=tmp_path, env=env)
    assert inside.returncode == outside.returncode == 3, (inside.stderr, outside.stderr)
