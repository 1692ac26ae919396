"""Running a tdd or land ``--check`` command: a timeout, output teed to a log, a verdict.

What the command string means (sh or plain words) is :mod:`gitxact.tx.check_spec`'s.
Its output streams to the terminal (stderr: stdout belongs to ``--json``) and is kept
in ``<common-dir>/gitxact/logs/check-*.log``, whose path is reported.

The check runs in its own process group with no stdin, under a supervisor
(:mod:`gitxact.util.supervised`), so a timeout stops it and everything it started
(``sh -c 'sleep 999'`` would otherwise hold the pipe open), Ctrl-C / SIGTERM sent to
gitxact are passed on to that group, and the group ends when gitxact dies, SIGKILL
included. A check gitxact had to interrupt is reported as such, never as a pass or a fail.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from gitxact.errors import CommandNotRunnableError, UsageError
from gitxact.git.lite import INTERNAL_ENV
from gitxact.locking.locks import LOCKS_ENV
from gitxact.tx.check_spec import Check, CheckSpec, parse, parse_codes
from gitxact.util import process, supervised
from gitxact.util.files import ensure_private_dir, open_state_file

LOG_KEEP = 100
_KILL_GRACE = 2.0
_POLL = 0.2
Echo = Callable[[bytes], None]


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
        """126/127: the command could not be run (as sh and the supervisor report it): no verdict."""
        return self.returncode in (process.EXIT_NOT_EXECUTABLE, process.EXIT_NOT_FOUND)

    def not_a_failure(self) -> str | None:
        """Why this failing exit does not show failing tests (so red must not commit), or None.

        A check that did not run the tests proves nothing about them: a signal (128+N, as a
        shell reports it; the supervisor does the same), pytest's own codes for a run that
        never judged a test, or, with ``--red-exit``, any code not listed there.
        """
        code = self.returncode
        if code is None or code == 0:
            return None
        reason = _why_not_tests(code, self.spec.runner)
        listed = self.spec.red_exit
        if listed is None:
            return reason
        if code in listed:
            return None
        codes = ",".join(str(c) for c in sorted(listed))
        return reason or f"--red-exit lists only {codes}"

    def describe(self) -> str:
        if self.timed_out:
            return f"timed out after {self.spec.timeout:g}s"
        if self.interrupted:
            return "was interrupted"
        return "passed" if self.returncode == 0 else f"failed (exit {self.returncode})"


#: pytest's ExitCode: 1 is TESTS_FAILED; these say it judged no test (docs.pytest.org, "Exit codes").
PYTEST_NOT_FAILED = {
    2: "pytest was interrupted, or a test module failed to import (a collection error)",
    3: "pytest hit an internal error",
    4: "pytest was called wrongly (a usage error)",
    5: "pytest collected no tests",
}


def _why_not_tests(code: int, runner: str | None) -> str | None:
    if code == process.EXIT_NOT_EXECUTABLE:
        return "the command could not be executed"
    if code == process.EXIT_NOT_FOUND:
        return "a command was not found"
    if code > 128 and code - 128 in signal.valid_signals():
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"it was killed by {name}"
    if runner == "pytest" and code in PYTEST_NOT_FAILED:
        return PYTEST_NOT_FAILED[code]
    return None


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
def _forward_signals(started: list[supervised.Supervised], interrupted: list[int]) -> Iterator[None]:
    """Pass Ctrl-C, SIGTERM and SIGHUP on to the check (in *started*, once it is) and note them.

    Installed before the check starts: a signal in between would otherwise stop gitxact
    with a KeyboardInterrupt rather than as an interrupted check.
    """

    def forward(signum: int, _frame: FrameType | None) -> None:
        interrupted.append(signum)
        for check in started:
            check.signal(signum)

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
    interrupted: list[int] = []
    running: list[supervised.Supervised] = []
    with _forward_signals(running, interrupted):
        return _run_one(
            spec, cwd, log_dir=log_dir, label=label, env=env, echo=echo, running=running, interrupted=interrupted
        )


def run_all(
    jobs: Sequence[tuple[CheckSpec, Path]],
    *,
    log_dir: Path,
    label: str,
    env: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Run several checks at once (one thread each), each in its own cwd; their verdicts, in order.

    Each check has its own supervisor and process group, as :func:`run` gives one. The
    signal handlers are installed once, here in the calling thread (Python allows them only
    in the main thread), and pass a Ctrl-C or SIGTERM on to every check started, or about
    to start: each thread looks at the shared *interrupted* list once its check is running.
    Output goes only to each check's log: several checks' lines interleaved would be noise.
    An error starting one check (it cannot run) is raised once all have ended.
    """
    interrupted: list[int] = []
    running: list[supervised.Supervised] = []
    results: list[CheckResult | None] = [None] * len(jobs)
    errors: list[BaseException] = []

    def one(index: int, spec: CheckSpec, cwd: Path) -> None:
        try:
            results[index] = _run_one(
                spec,
                cwd,
                log_dir=log_dir,
                label=f"{label}-{index + 1}",
                env=env,
                echo=None,
                running=running,
                interrupted=interrupted,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            errors.append(exc)

    with _forward_signals(running, interrupted):
        threads = [
            threading.Thread(target=one, args=(i, spec, cwd), name=f"check-{i + 1}", daemon=True)
            for i, (spec, cwd) in enumerate(jobs)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if errors:
        raise errors[0]
    return [r for r in results if r is not None]


def _run_one(
    spec: CheckSpec,
    cwd: Path,
    *,
    log_dir: Path,
    label: str,
    env: Mapping[str, str] | None,
    echo: Echo | None,
    running: list[supervised.Supervised],
    interrupted: list[int],
) -> CheckResult:
    child_env = dict(os.environ if env is None else env)
    child_env.pop(LOCKS_ENV, None)  # the check runs with no gitxact lock held: it must not claim any
    child_env.pop(INTERNAL_ENV, None)  # a user's command: its gits are judged by the hooks
    prune_logs(log_dir, LOG_KEEP - 1)
    log, fd = _open_log(log_dir, label)
    started = time.monotonic()
    try:
        header = f"$ {spec.display}\n# cwd {cwd}\n# started {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n"
        os.write(fd, header.encode())
        deadline = None if spec.timeout is None else started + spec.timeout
        try:
            check = supervised.start(spec.argv, env=child_env, cwd=cwd)
        except CommandNotRunnableError as exc:
            os.write(fd, f"# {exc.message}\n".encode())
            # Unlike `gitxact lock -- CMD`, whose exit is CMD's (126/127 as a shell says),
            # a check that cannot start is a mistake in the --check argument: exit 2.
            raise UsageError(f"the --check command cannot run: {exc.message}", hint=exc.hint) from exc
        running.append(check)
        if interrupted:  # it came while the check was starting
            check.signal(interrupted[0])
        try:
            os.write(fd, f"# process group {check.pgid}\n".encode())
            timed_out = _pump(check, fd, echo, deadline)
            returncode = check.wait()
        finally:
            check.close()  # after an exception here (a broken log) too: nothing is left running
        seconds = time.monotonic() - started
        code = None if timed_out or interrupted else returncode
        verdict = "timed out" if timed_out else "interrupted" if interrupted else f"exit {code}"
        os.write(fd, f"\n# {verdict} after {seconds:.1f}s\n".encode())
    finally:
        os.close(fd)
    return CheckResult(spec, code, timed_out, bool(interrupted), log, seconds)


def _pump(check: supervised.Supervised, log_fd: int, echo: Echo | None, deadline: float | None) -> bool:
    """Copy the check's output to the log and *echo* until EOF; True if the deadline hit.

    At the deadline the group gets SIGTERM, and SIGKILL after a grace period. When the
    check itself exits, the supervisor ends whatever it left running in its group: a
    background child holding the pipe would otherwise keep gitxact waiting for an end of
    output that never comes.
    """
    source = check.output
    kill_at: float | None = None
    timed_out = False
    while True:
        now = time.monotonic()
        if deadline is not None and now >= deadline and kill_at is None:
            timed_out = True
            check.signal(signal.SIGTERM)
            kill_at = now + _KILL_GRACE
        if kill_at is not None and now >= kill_at:
            check.kill()
            kill_at = math.inf
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


__all__ = [
    "LOG_KEEP",
    "Check",
    "CheckResult",
    "CheckSpec",
    "Echo",
    "parse",
    "parse_codes",
    "prune_logs",
    "run",
    "run_all",
    "stderr_echo",
]
