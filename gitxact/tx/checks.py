"""Running a tdd ``--check`` command: no shell unless asked, a timeout, output teed to a log.

The command is split with :func:`shlex.split` (so ``--check 'pytest -k "a or b"'``
works and nothing in it is interpreted by a shell); ``--shell`` runs it with
``/bin/sh -c`` explicitly, for pipes and ``&&``. Its output streams to the terminal
(stderr: stdout belongs to ``--json``) and is kept in
``<common-dir>/gitxact/logs/check-*.log``, whose path is reported.

The check runs in its own process group with no stdin, so a timeout can stop it and
everything it started (``sh -c 'sleep 999'`` would otherwise hold the pipe open), and
Ctrl-C / SIGTERM sent to gitxact are passed on to that group. A check gitxact had to
interrupt is reported as such, never as a pass or a fail.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from gitxact.errors import CommandNotRunnableError, UsageError
from gitxact.locking.locks import LOCKS_ENV
from gitxact.util import process
from gitxact.util.files import ensure_private_dir, open_state_file

if TYPE_CHECKING:
    import subprocess

LOG_KEEP = 100
_KILL_GRACE = 2.0
_POLL = 0.2
Echo = Callable[[bytes], None]


@dataclass(frozen=True)
class CheckSpec:
    argv: list[str]
    display: str
    shell: bool
    timeout: float | None  # None or 0: no limit


@dataclass(frozen=True)
class CheckResult:
    spec: CheckSpec
    returncode: int | None  # shell-style (128+N when killed by signal N); None: timed out/interrupted
    timed_out: bool
    interrupted: bool
    log: Path
    seconds: float

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.interrupted

    @property
    def not_runnable(self) -> bool:
        """``sh -c`` says 126/127 when the command cannot be run: no verdict on the code."""
        return self.spec.shell and self.returncode in (process.EXIT_NOT_EXECUTABLE, process.EXIT_NOT_FOUND)

    def describe(self) -> str:
        if self.timed_out:
            return f"timed out after {self.spec.timeout:g}s"
        if self.interrupted:
            return "was interrupted"
        return "passed" if self.returncode == 0 else f"failed (exit {self.returncode})"


def parse(command: str, *, shell: bool = False, timeout: float | None = None) -> CheckSpec:
    """A check command line; bad quoting or an empty command is a usage error (exit 2)."""
    if not command.strip():
        raise UsageError("the --check command is empty")
    if timeout is not None and (timeout < 0 or math.isnan(timeout)):
        raise UsageError(f"check timeout {timeout!r} must be a non-negative number of seconds")
    if shell:
        return CheckSpec(["/bin/sh", "-c", command], command, True, timeout or None)
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse --check {command!r}: {exc}", hint="fix the quoting, or use --shell") from exc
    if not argv or not argv[0]:
        raise UsageError("the --check command is empty")
    return CheckSpec(argv, command, False, timeout or None)


def stderr_echo(data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.buffer.write(data)
        sys.stderr.buffer.flush()


def _open_log(log_dir: Path, label: str) -> tuple[Path, int]:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    path = log_dir / f"check-{stamp}-{label}-{secrets.token_hex(3)}.log"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return path, open_state_file(path, flags, ensure_private_dir(log_dir))


def prune_logs(log_dir: Path, keep: int = LOG_KEEP) -> None:
    """Keep the newest *keep* check logs (names sort by time)."""
    logs = sorted(log_dir.glob("check-*.log"))
    for old in logs[:-keep] if keep else logs:
        with contextlib.suppress(OSError):
            old.unlink()


@contextlib.contextmanager
def _forward_signals(pgid: int, interrupted: list[int]) -> Iterator[None]:
    def forward(signum: int, _frame: FrameType | None) -> None:
        interrupted.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signum)

    if threading.current_thread() is not threading.main_thread():
        # Python lets only the main thread install handlers; a check run from a worker
        # thread (an orchestrator's pool, the MCP server's tools) ends by its timeout.
        yield
        return
    saved = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def run(
    spec: CheckSpec,
    *,
    cwd: Path,
    log_dir: Path,
    label: str,
    env: Mapping[str, str] | None = None,
    echo: Echo | None = stderr_echo,
) -> CheckResult:
    """Run the check to completion (or its timeout) and return its verdict."""
    child_env = dict(os.environ if env is None else env)
    child_env.pop(LOCKS_ENV, None)  # the check runs with no gitxact lock held: it must not claim any
    prune_logs(log_dir, LOG_KEEP - 1)
    log, fd = _open_log(log_dir, label)
    started = time.monotonic()
    try:
        header = f"$ {spec.display}\n# cwd {cwd}\n# started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        os.write(fd, header.encode())
        try:
            proc = process.start(spec.argv, env=child_env, cwd=cwd, capture=True, own_group=True)
        except CommandNotRunnableError as exc:
            os.write(fd, f"# {exc.message}\n".encode())
            # Unlike `gitxact lock -- CMD`, whose exit is CMD's (126/127 as a shell says),
            # a check that cannot start is a mistake in the --check argument: exit 2.
            raise UsageError(f"the --check command cannot run: {exc.message}", hint=exc.hint) from exc
        interrupted: list[int] = []
        timed_out = False
        deadline = None if spec.timeout is None else started + spec.timeout
        stream = proc.stdout
        assert stream is not None  # noqa: S101 - capture=True always gives a pipe
        with _forward_signals(proc.pid, interrupted):
            timed_out = _pump(proc, stream.fileno(), fd, echo, deadline)
            returncode = proc.wait()
        stream.close()
        seconds = time.monotonic() - started
        code = None if timed_out or interrupted else process.exit_status(returncode)
        verdict = "timed out" if timed_out else "interrupted" if interrupted else f"exit {code}"
        os.write(fd, f"\n# {verdict} after {seconds:.1f}s\n".encode())
    finally:
        os.close(fd)
    return CheckResult(spec, code, timed_out, bool(interrupted), log, seconds)


def _pump(proc: subprocess.Popen[bytes], source: int, log_fd: int, echo: Echo | None, deadline: float | None) -> bool:
    """Copy the check's output to the log and *echo* until EOF; True if the deadline hit.

    When the check itself has exited, whatever it left running in its process group
    is stopped: a background child holding the pipe would otherwise keep gitxact
    waiting for an end of output that never comes.
    """
    kill_at: float | None = None
    timed_out = False
    leader_done = False
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline and kill_at is None:
            timed_out = True
            _signal_group(proc.pid, signal.SIGTERM)
            kill_at = now + _KILL_GRACE
        if kill_at is not None and now >= kill_at:
            _signal_group(proc.pid, signal.SIGKILL)
            kill_at = math.inf
        # WNOWAIT: look without reaping, so the leader's pid (= the group id) stays
        # taken until the group is signalled; it cannot be recycled in between.
        if not leader_done and os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            leader_done = True
            _signal_group(proc.pid, signal.SIGKILL)
        limit = min(t for t in (deadline if kill_at is None else kill_at, now + _POLL) if t is not None)
        ready, _, _ = select.select([source], [], [], max(0.0, limit - now))
        if not ready:
            continue
        data = os.read(source, 65536)
        if not data:
            return timed_out
        os.write(log_fd, data)
        if echo is not None:
            echo(data)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
