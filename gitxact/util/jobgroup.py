"""A user's command in a process group of its own, so it can be ended as a whole.

``gitxact lock --name N -- CMD`` runs CMD this way: when the lock is lost (the holder
could not confirm its PostgreSQL session in time), everything CMD started must stop
before the server can hand the lock to another host, grandchildren included, which a
signal to CMD alone (or ``PR_SET_PDEATHSIG``) would miss. A group of its own does not
get the terminal's signals, so the terminal is handed to it while it runs (as a shell
does for a foreground job) and SIGINT, SIGTERM and SIGHUP sent to gitxact are passed on
to the group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from gitxact.util import process

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import FrameType

_POLL = 0.02


class Job:
    """CMD started in its own group, tied to this process (it dies if gitxact is SIGKILLed)."""

    def __init__(self, argv: Sequence[str], *, env: Mapping[str, str]) -> None:
        self.proc = process.start(argv, env=env, own_group=True, tied=True)
        self.pgid = self.proc.pid
        self._ended = threading.Event()
        #: How :meth:`end` stopped the group ("SIGTERM", "SIGKILL"), once it did.
        self.how: str | None = None

    def wait(self) -> int:
        """Wait for CMD, with the terminal and our signals passed to its group; its exit status."""
        with self._terminal(), self._forwarding():
            returncode = self.proc.wait()
        return process.exit_status(returncode)

    def end(self, grace: float) -> None:
        """SIGTERM the whole group, SIGKILL it after *grace* seconds; return once no member is left
        (or after another *grace*, for a process the kernel cannot kill at once)."""
        if self._signal(signal.SIGTERM):
            self.how = "SIGTERM"
        if self.how and not self._gone_within(grace):
            self.how = "SIGKILL"
            self._signal(signal.SIGKILL)
            self._gone_within(grace)
        self._ended.set()

    def wait_ended(self, timeout: float) -> bool:
        """Whether :meth:`end` (run by another thread) finished within *timeout* seconds."""
        return self._ended.wait(timeout)

    def _signal(self, signum: int) -> bool:
        try:
            os.killpg(self.pgid, signum)
        except ProcessLookupError:
            return False
        return True

    def _gone_within(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while True:
            if self.proc.poll() is not None and not self._signal(0):
                return True  # CMD reaped, and nobody else left in its group
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL)

    @contextlib.contextmanager
    def _forwarding(self) -> Iterator[None]:
        def forward(signum: int, _frame: FrameType | None) -> None:
            self._signal(signum)

        names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {signum: signal.signal(signum, forward) for signum in names}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextlib.contextmanager
    def _terminal(self) -> Iterator[None]:
        """The terminal to CMD's group while it runs, when it was ours (reads would stop it otherwise)."""
        fd = _foreground_tty()
        if fd is None:
            yield
            return
        _give_terminal(fd, self.pgid)
        # CMD may have read before it had the terminal: then SIGTTIN stopped it, and having
        # the terminal now does not wake it. Continue it, as a shell does a job it puts in front.
        self._signal(signal.SIGCONT)
        try:
            yield
        finally:
            _give_terminal(fd, os.getpgrp())


def _foreground_tty() -> int | None:
    try:
        fd = sys.stdin.fileno()
        return fd if os.isatty(fd) and os.tcgetpgrp(fd) == os.getpgrp() else None
    except (OSError, ValueError, AttributeError):
        return None


def _give_terminal(fd: int, pgid: int) -> None:
    # tcsetpgrp from a background group raises SIGTTOU, which stops us unless ignored.
    previous = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, pgid)
    finally:
        signal.signal(signal.SIGTTOU, previous)
