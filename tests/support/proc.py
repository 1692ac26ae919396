"""Running git, gitxact and gx as real processes, and cleaning up after them.

Every helper here starts a real process; none of them mocks git or the filesystem.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GITXACT = [sys.executable, "-m", "gitxact"]
GX = [sys.executable, "-c", "import sys; from gitxact.gx.main import main; sys.exit(main())"]


def run(
    argv: list[str],
    cwd: Path | str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run *argv* with this test's environment plus *env*; never raises on a failure exit."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
    return run([*GITXACT, *args], cwd, env, input, timeout)


def assert_clean_error(proc: subprocess.CompletedProcess[str], code: int) -> None:
    """A user-facing failure: the expected code, a message, and never a traceback."""
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout
    assert proc.stderr.strip(), "an error must say why"


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
    wait_for_file(ready, "git commit's editor to start", proc)
    return proc


def wait_for_file(path: Path, what: str, proc: subprocess.Popen[Any] | None = None, timeout: float = 60) -> None:
    """Wait until *path* exists (a process says it got somewhere); fail if *proc* ended first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc is None or proc.poll() is None, f"the process ended while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


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


def run_parallel(commands: list[list[str]], cwd: Path, timeout: float = 600) -> list[subprocess.CompletedProcess[str]]:
    """Start every command at once and wait for all of them.

    Each runs in a process group of its own; if the wait runs out (or anything raises),
    every group is killed and reaped before the error goes on, so no process outlives
    the test.
    """
    procs = [
        subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        for cmd in commands
    ]
    results = []
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.returncode is None:
                kill_group(proc)  # type: ignore[arg-type]
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    return results


@contextlib.contextmanager
def owner_process() -> Iterator[subprocess.Popen[bytes]]:
    """A real, idle process to own a lease; always killed and reaped (no zombie left)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
