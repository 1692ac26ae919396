"""gitxact's hooks and the real pre-commit framework installed together, in either order.

The check must run exactly once per commit: a refused commit prints "commit refused"
once, not once per installer. The observable is that refusal (bob committing in
alice's worktree); a person's own pre-commit hook that was there first keeps running,
once. Uses the installed `pre-commit` package (a [test] extra) with a `repo: local`
hook, so nothing is downloaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import git, gitxact

from gitxact.hooks import framework
from gitxact.hooks.install import render

BIN = Path(sys.executable).parent
CONFIG = """\
repos:
  - repo: local
    hooks:
      - id: gitxact-guard
        name: gitxact guard
        entry: gitxact framework-hook pre-commit
        language: system
        pass_filenames: false
        always_run: true
"""
REFUSED = "gitxact: commit refused"


@pytest.fixture
def setup(repo: Path, tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """(alice's worktree, the log of the person's own hook, the environment)."""
    (repo / ".pre-commit-config.yaml").write_text(CONFIG)
    git("add", ".pre-commit-config.yaml", cwd=repo)
    git("commit", "-q", "-m", "pre-commit config", cwd=repo)
    log = tmp_path / "own-hook.log"
    own = repo / ".git" / "hooks" / "pre-commit"
    own.write_text(f"#!/bin/sh\necho ran >> {log}\n")
    own.chmod(0o755)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
    }
    return acquire(repo, "alice"), log, env


def run(argv: list[str], cwd: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, cwd=cwd, env={**os.environ, **env, **extra}, capture_output=True, text=True, timeout=120, check=False
    )


def pre_commit(args: list[str], cwd: Path, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return run([str(BIN / "python"), "-m", "pre_commit", *args], cwd, env, **extra)


def install_gitxact(repo: Path) -> None:
    proc = gitxact("hooks", "install", cwd=repo)
    assert proc.returncode == 0, proc.stderr


def install_framework(repo: Path, env: dict[str, str]) -> None:
    proc = pre_commit(["install"], repo, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def commit(where: Path, env: dict[str, str], agent: str) -> tuple[int, int]:
    """Commit a new file as *agent*; (git's exit code, how many times the check refused it)."""
    path = where / f"{agent}.txt"
    path.write_text(path.read_text() + "x" if path.exists() else "x")  # always something new to commit
    git("add", path.name, cwd=where)
    proc = run(["git", "commit", "-q", "-m", f"by {agent}"], where, env, GITXACT_AGENT=agent)
    return proc.returncode, (proc.stdout + proc.stderr).count(REFUSED)


@pytest.mark.parametrize("order", ["gitxact-first", "framework-first"])
def test_the_check_runs_once_whichever_is_installed_first(
    repo: Path, setup: tuple[Path, Path, dict[str, str]], order: str
) -> None:
    alice, log, env = setup
    if order == "gitxact-first":
        install_gitxact(repo)
        install_framework(repo, env)
    else:
        install_framework(repo, env)
        install_gitxact(repo)
    hooks = repo / ".git" / "hooks"
    # One layout either way: the framework's script on top, gitxact's as the hook it runs
    # first, the person's own hook chained after gitxact's check.
    assert framework.is_framework_hook(str(hooks / "pre-commit"))
    assert framework.is_gitxact_hook(str(hooks / "pre-commit.legacy"))
    assert "echo ran" in (hooks / "pre-commit.gitxact-chained").read_text()

    assert commit(alice, env, "bob") == (1, 1), "refused, by one check"
    assert not log.exists()
    assert commit(alice, env, "alice") == (0, 0)
    assert log.read_text() == "ran\n", "the person's own hook ran once"

    # Outside a commit the framework's hook checks by itself.
    manual = pre_commit(["run", "--all-files"], alice, env, GITXACT_AGENT="bob")
    assert manual.returncode == 1
    assert manual.stdout.count(REFUSED) == 1

    # Installing again changes nothing; either uninstall leaves one check.
    again = gitxact("hooks", "install", "--json", cwd=repo)
    assert '"action": "unchanged under pre-commit"' in again.stdout
    install_framework(repo, env)
    assert commit(alice, env, "bob") == (1, 1)
    assert gitxact("hooks", "uninstall", cwd=repo).returncode == 0
    assert "echo ran" in (hooks / "pre-commit.legacy").read_text(), "the person's hook, back beneath the framework"
    assert commit(alice, env, "bob") == (1, 1), "the framework's hook checks alone now"
    install_gitxact(repo)
    uninstalled = pre_commit(["uninstall"], repo, env)
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert framework.is_gitxact_hook(str(hooks / "pre-commit")), "the framework put gitxact's hook back"
    assert commit(alice, env, "bob") == (1, 1)
    log.unlink()
    assert commit(alice, env, "alice") == (0, 0)
    assert log.read_text() == "ran\n"


def test_an_earlier_gitxacts_layout_is_turned_into_the_frameworks(
    repo: Path, setup: tuple[Path, Path, dict[str, str]]
) -> None:
    """gitxact used to chain the framework's script under its own: the check ran twice, and a
    second `pre-commit install` broke commits ("installed in migration mode")."""
    alice, _, env = setup
    hooks = repo / ".git" / "hooks"
    (hooks / "pre-commit").unlink()  # no person's hook here: the old layout had room for one chain only
    install_framework(repo, env)
    os.replace(hooks / "pre-commit", hooks / "pre-commit.gitxact-chained")
    (hooks / "pre-commit").write_text(render("pre-commit"))
    (hooks / "pre-commit").chmod(0o755)
    assert commit(alice, env, "bob") == (1, 1), "the framework's hook defers to gitxact's on top, too"

    proc = gitxact("hooks", "install", "--json", cwd=repo)
    assert '"action": "unchanged under pre-commit"' in proc.stdout
    assert framework.is_framework_hook(str(hooks / "pre-commit"))
    assert framework.is_gitxact_hook(str(hooks / "pre-commit.legacy"))
    assert not (hooks / "pre-commit.gitxact-chained").exists()
    install_framework(repo, env)
    assert commit(alice, env, "bob") == (1, 1)
    assert commit(alice, env, "alice") == (0, 0)


def test_a_gitxact_hook_that_cannot_run_is_not_counted_on(tmp_path: Path) -> None:
    hook = tmp_path / "pre-commit"
    hook.write_text(render("pre-commit").replace(sys.executable, str(tmp_path / "gone" / "python")))
    hook.chmod(0o755)
    assert framework.is_gitxact_hook(str(hook))
    assert not framework.checks_itself(str(hook)), "it would only warn: the framework's hook must check"
    hook.write_text(render("pre-commit"))
    assert framework.checks_itself(str(hook))


def test_the_frameworks_git_hook_is_told_from_its_command_line(tmp_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"]
    for args, expected in (
        (["hook-impl", "--hook-type=pre-commit", "--hook-dir", str(tmp_path), "--"], ("pre-commit", str(tmp_path))),
        (["hook-impl", "--hook-type", "pre-push", f"--hook-dir={tmp_path}"], ("pre-push", str(tmp_path))),
        (["hook-impl", "--hook-type=pre-commit"], None),  # no hooks folder: git's config-based hooks
        (["run", "--all-files"], None),
    ):
        proc = subprocess.Popen([*sleeper, *args], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "up\n"  # exec'd: /proc shows its own command line now
            assert framework.framework_invocation(proc.pid) == expected, args
        finally:
            proc.kill()
            proc.communicate()
    assert framework.already_checked("pre-commit", pid=os.getpid()) is None
