"""Fixtures: real git repositories in tmp_path, and gitxact run as a real process.

Every test runs with HOME and git's global config pointed into its own tmp folder and
a pinned author, so nothing reads or writes the developer's own setup, and commits
are reproducible.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GITXACT = [sys.executable, "-m", "gitxact"]
GX = [sys.executable, "-c", "import sys; from gitxact.gx import main; sys.exit(main())"]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    for name in list(os.environ):
        if name.startswith(("GIT_", "GITXACT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    before = sorted(p.name for p in home.iterdir())
    environ = dict(os.environ)
    yield home
    # In-process CLI calls (tests/test_hostile.py) adjust os.environ for themselves.
    os.environ.clear()
    os.environ.update(environ)
    after = sorted(p.name for p in home.iterdir())
    assert after == before, f"a test wrote into $HOME: {set(after) - set(before)}"


def git(*args: str, cwd: Path, check: bool = True, input: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, input=input, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc.stdout


def gitxact(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*GITXACT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=full_env,
        input=input,
        timeout=timeout,
        check=False,
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    """A user-facing failure: the expected code, a message, and never a traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout
    assert proc.stderr.strip(), "an error must say why"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit on main, in tmp_path/repo."""
    path = tmp_path / "repo"
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    (path / "README").write_text("hello\n")
    git("add", "README", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def inside(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """*repo*, initialized, as the current folder: for tests that call the CLI in-process."""
    from gitxact.cli.main import main

    monkeypatch.chdir(repo)
    assert main(["init"]) == 0
    return repo


def git_commit_paused_in_editor(cwd: Path, ready: Path, *args: str) -> subprocess.Popen[bytes]:
    """A raw `git commit ARGS` stopped in its editor, holding what it locked (`-a`: index.lock).

    It runs in a process group of its own, so :func:`kill_group` takes the editor too.
    """
    editor = f"exec >/dev/null 2>&1; touch {ready}; sleep 60; :"  # the sleep must not hold our pipes
    proc = subprocess.Popen(
        ["git", "-c", f"core.editor={editor}", "commit", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert time.monotonic() < deadline, "the editor never started"
        assert proc.poll() is None, "git commit ended before its editor started"
        time.sleep(0.02)
    return proc


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL *proc*'s process group and wait until every member is gone (its locks orphaned)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while True:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"process group {proc.pid} did not go away"
        time.sleep(0.01)
