"""The program that runs a check: its process group ends when the check ends or gitxact dies.

Run as ``python -I -S group_supervisor.py FD -- ARGV...`` by
:func:`gitxact.util.supervised.start` (standard library only: ``-I -S`` finds no
gitxact and no site-packages). A SIGKILLed gitxact cannot stop what it started, and
``PR_SET_PDEATHSIG`` (:mod:`gitxact.util.tie`) ends only the direct child: the
``sleep 60 &`` of ``sh -c 'sleep 60 & sleep 60'`` would live on. So this small process
sits between them, outside the check's group, and holds one end of a socket whose other
end only gitxact holds. The kernel closes that end however gitxact dies; the EOF makes
this process SIGKILL the whole group. The check's group is its own (its leader is the
check), so this process can kill it and still report.

Protocol on FD, one line each: ``started PGID`` or ``unrunnable CODE MESSAGE`` (the
command could not be started; CODE is the shell's 126/127), then ``exit STATUS`` (the
check's shell-style status, 128+N for signal N) when it ends. SIGINT, SIGTERM and SIGHUP
are passed on to the group. The exit status of this process is the check's.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
from types import FrameType

_SIGKILL_STATUS = 128 + signal.SIGKILL
#: Back to the default action in the check: Python ignores SIGPIPE (and SIGXFSZ), and an
#: ignored signal stays ignored across exec; the forwarded ones are caught here, which
#: exec resets anyway.
_DEFAULT_IN_CHECK = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _send(ctl: int, line: str) -> bool:
    """False if gitxact's end is gone (it died, or it asked for the group to end)."""
    try:
        os.write(ctl, line.encode("utf-8", "surrogateescape") + b"\n")
    except OSError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _reap(pid: int) -> int:
    """The check's shell-style status, once it has ended (128+N for signal N)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # pragma: no cover - only this process reaps it
            return _SIGKILL_STATUS
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def main(args: list[str]) -> int:
    ctl = int(args[0])
    os.set_inheritable(ctl, False)  # the check must not hold gitxact's line
    argv = args[2:]
    group: list[int] = []
    pending: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        if not group:
            pending.append(signum)  # arrived before the check started: given to it at once
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group[0], signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    try:
        # posix_spawn, not subprocess: the import of subprocess would double the start of
        # this process, paid by every check. setpgroup=0: the check leads a group of its own.
        pid = os.posix_spawnp(argv[0], argv, os.environ, setpgroup=0, setsigdef=_DEFAULT_IN_CHECK)
    except FileNotFoundError:
        _send(ctl, f"unrunnable 127 command not found: {argv[0]}")
        return 127
    except PermissionError:
        _send(ctl, f"unrunnable 126 permission denied: {argv[0]}")
        return 126
    except OSError as exc:
        _send(ctl, f"unrunnable 126 cannot execute {argv[0]}: {exc.strerror}")
        return 126
    group.append(pid)
    try:
        for signum in pending:
            forward(signum, None)
        checked = _send(ctl, f"started {pid}") and _wait(ctl, pid)
    finally:
        # Whatever the check left running in its group (`sleep 60 &`); all of it if gitxact
        # is gone or anything here failed. Before reaping: till then the group id is the check's.
        _kill_group(pid)
    status = _reap(pid)
    if not checked:
        return _SIGKILL_STATUS
    _send(ctl, f"exit {status}")
    return status


def _wait(ctl: int, pid: int) -> bool:
    """Wait until the check exits (True) or gitxact's end closes (False: it died, or timed the check out)."""
    watched = [ctl]
    pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
    if pidfd is not None:
        watched.append(pidfd)
    # WNOWAIT: look without reaping, so the check's pid (= the group id) stays taken until
    # the group has been signalled; it cannot be recycled and another group hit instead.
    while os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
        ready, _, _ = select.select(watched, [], [], None if pidfd is not None else 0.1)
        if ctl in ready:
            try:
                if not os.read(ctl, 64):
                    return False
            except OSError:  # ECONNRESET: gitxact died before it read our line
                return False
    return True


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
