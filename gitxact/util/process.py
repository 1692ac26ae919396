"""Running a user's command (``lock -- CMD``, ``tdd --check CMD``) as a child.

Not git: that is :mod:`gitxact.git.run`'s job. Here the child gets the terminal as is,
the parent ignores Ctrl-C while it waits (the terminal delivers SIGINT to the whole
foreground group, so the child decides what Ctrl-C means, like a shell does), and a
SIGTERM sent to gitxact is passed on, so locks are released only after the child is
gone. A SIGKILL cannot be passed on: a child started with :func:`die_with_parent` is
killed by the kernel when its parent dies, so no command goes on working under a lock
its dead parent no longer holds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import CommandNotRunnableError, UsageError
from gitxact.util.tie import die_with_parent

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import FrameType

EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127
_SYNTAX_TIMEOUT = 30.0


def exit_status(returncode: int) -> int:
    """A shell-style exit status: a child killed by signal N gives 128+N."""
    return 128 - returncode if returncode < 0 else returncode


@contextlib.contextmanager
def forward_signals(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)

    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, forward)
    previous_hup = signal.signal(signal.SIGHUP, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    capture: bool = False,
    own_group: bool = False,
    tied: bool = False,
) -> subprocess.Popen[bytes]:
    """Start *argv* (no shell); a missing or non-executable program is a usage error.

    ``capture`` gives the child no stdin and one pipe for stdout+stderr (a tdd check
    whose output gitxact tees into a log); ``own_group`` puts it in a new process
    group, so a timeout can kill the check *and* everything it started; ``tied`` makes
    it die with this process (:func:`die_with_parent`).
    """
    if not argv:
        raise UsageError("no command given", hint="put the command after --, e.g. gitxact lock -- make test")
    group = 0 if own_group else None
    preexec = die_with_parent() if tied else None
    try:
        if capture:
            return subprocess.Popen(
                list(argv),
                env=dict(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                process_group=group,
                preexec_fn=preexec,  # noqa: PLW1509 - None unless tied (single-threaded callers)
            )
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            process_group=group,
            preexec_fn=preexec,  # noqa: PLW1509 - as above
        )
    except FileNotFoundError as exc:
        raise CommandNotRunnableError(f"command not found: {argv[0]}", EXIT_NOT_FOUND) from exc
    except PermissionError as exc:
        raise CommandNotRunnableError(f"permission denied: {argv[0]}", EXIT_NOT_EXECUTABLE) from exc


def shell_syntax_error(shell: str, command: str) -> str | None:
    """sh's complaint about *command*'s syntax, or None: ``sh -n`` reads it and runs nothing."""
    try:
        proc = subprocess.run(
            [shell, "-n", "-c", command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_SYNTAX_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandNotRunnableError(f"command not found: {shell}", EXIT_NOT_FOUND) from exc
    except subprocess.TimeoutExpired:
        return f"{shell} -n did not finish in {_SYNTAX_TIMEOUT:g}s"
    if proc.returncode == 0:
        return None
    lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"{shell} -n exited {proc.returncode}"


def run_foreground(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | None = None) -> int:
    """Run *argv* attached to our terminal, tied to this process; return its shell-style exit status."""
    proc = start(argv, env=env, cwd=cwd, tied=True)
    with forward_signals(proc):
        returncode = proc.wait()
    return exit_status(returncode)


def run_logged(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, log_fd: int, tied: bool) -> int:
    """Run *argv* with no stdin and its output (stdout and stderr) written to the file *log_fd*;
    return its shell-style exit status.

    The file itself, not a pipe: a server the command starts in the background keeps
    writing there, and gitxact does not wait for an end of output it would never see.
    It runs in a process group of its own: if this wait is interrupted (Ctrl-C reaches
    gitxact alone, as the foreground group), the command and all it started are killed
    before the caller undoes what they were working in.
    """
    preexec = die_with_parent() if tied else None
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            process_group=0,
            preexec_fn=preexec,  # noqa: PLW1509 - None unless tied (single-threaded callers)
        )
    except FileNotFoundError as exc:
        raise CommandNotRunnableError(f"command not found: {argv[0]}", EXIT_NOT_FOUND) from exc
    except PermissionError as exc:
        raise CommandNotRunnableError(f"permission denied: {argv[0]}", EXIT_NOT_EXECUTABLE) from exc
    try:
        return exit_status(proc.wait())
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
