"""A check's processes, in a group of their own that ends with this process, however it ends.

The gitxact side of :mod:`gitxact.util.group_supervisor` (read its docstring for why a
process sits between gitxact and the check). Signals go to that supervisor, never to the
group by its id: the supervisor is our child and is not reaped until we wait for it, so
its pid cannot be recycled, while the group's id is free again once the check is reaped.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gitxact.errors import CommandNotRunnableError, OperationFailedError
from gitxact.util import faults

_PROGRAM = Path(__file__).with_name("group_supervisor.py")
_START_TIMEOUT = 60.0  # the supervisor is a fresh Python: it reports at once, or something is badly wrong


class Supervised:
    """A started check: its output pipe, ways to stop it, and its exit status."""

    def __init__(self, proc: subprocess.Popen[bytes], ctl: socket.socket, pgid: int, buffer: bytes) -> None:
        self.proc = proc
        self.pgid = pgid
        self._ctl: socket.socket | None = ctl
        self._buffer = buffer  # what the supervisor said after its first line

    @property
    def output(self) -> int:
        """The read end of the pipe that the check's stdout and stderr share."""
        assert self.proc.stdout is not None  # noqa: S101 - started with stdout=PIPE
        return self.proc.stdout.fileno()

    def signal(self, signum: int) -> None:
        """Pass *signum* to every process of the check's group (the supervisor forwards it)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the whole group now: closing our end is what a death of this process does."""
        if self._ctl is not None:
            self._ctl.close()
            self._ctl = None

    def close(self) -> None:
        """End the group if it still runs and reap the supervisor (after :meth:`wait`, or an error)."""
        self.kill()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def wait(self) -> int | None:
        """Wait for the end; the check's shell-style status, None if it was killed with :meth:`kill`."""
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self._ctl is None:
            return None
        word, _, rest = _read_line(self._ctl, self._buffer)[0].partition(" ")
        self.kill()
        if word != "exit" or not rest.isdigit():
            raise OperationFailedError(
                f"the check's supervisor ended without its verdict (exit {self.proc.returncode})"
            )
        return int(rest)


def _read_line(ctl: socket.socket, buffer: bytes) -> tuple[str, bytes]:
    while b"\n" not in buffer:
        chunk = ctl.recv(4096)
        if not chunk:
            break
        buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    return line.decode("utf-8", "surrogateescape"), rest


def start(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Supervised:
    """Start *argv* in *cwd* with no stdin and one pipe for its stdout and stderr.

    A missing or non-executable program raises :class:`CommandNotRunnableError` (as
    :func:`gitxact.util.process.start` does) with nothing left running.
    """
    ours, theirs = socket.socketpair()  # both close-on-exec: only the supervisor gets one, by pass_fds
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", os.fspath(_PROGRAM), str(theirs.fileno()), "--", *argv],
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),),
            process_group=0,  # a terminal's Ctrl-C reaches gitxact, which decides what to pass on
        )
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
    ours.settimeout(_START_TIMEOUT)
    try:
        select.select([ours], [], [], _START_TIMEOUT)
        faults.crashpoint("check-started-unread")  # the supervisor has spoken; we die before we listen
        line, rest = _read_line(ours, b"")
    except BaseException:
        ours.close()  # the supervisor ends the group on this EOF
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        raise
    ours.settimeout(None)
    word, _, detail = line.partition(" ")
    if word == "started" and detail.isdigit():
        return Supervised(proc, ours, int(detail), rest)
    ours.close()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
    code, _, message = detail.partition(" ")
    if word == "unrunnable" and code.isdigit():
        raise CommandNotRunnableError(message, int(code))
    raise OperationFailedError(f"the check's supervisor did not start (exit {proc.returncode})")
