"""Test-only crash switches.

``GITXACT_TEST_CRASHPOINT`` (a comma-separated list of crash point names) makes the
process SIGKILL itself when it reaches one of those points, so the test suite can
prove that a crash at that exact moment is recoverable. It is documented in
CONTRIBUTING.md as a test switch; it has no effect unless set.

``GITXACT_TEST_CRASH_AFTER_STEP=N`` (also test-only) makes the process SIGKILL itself
right after its N-th write-ahead journal step (counted per process, from 1), so a
test can enumerate every step boundary of a command without knowing their names:
run with N = 1, 2, ... until the command finishes without dying.
"""

from __future__ import annotations

import itertools
import os

CRASHPOINT_ENV = "GITXACT_TEST_CRASHPOINT"
CRASH_AFTER_STEP_ENV = "GITXACT_TEST_CRASH_AFTER_STEP"

_journal_steps = itertools.count(1)
#: POSIX's number for SIGKILL, the lean core's (gitxact.util.tie's too): signal.SIGKILL would import
#: signal's enums on gx's path.
SIGKILL = 9


def crashpoint(name: str) -> None:
    """Die here, as a power cut would, if the test switch names this point."""
    wanted = os.environ.get(CRASHPOINT_ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), SIGKILL)


def journal_step() -> int:
    """Count one durable journal write of this process; die after step N if the test switch says so."""
    step = next(_journal_steps)
    wanted = os.environ.get(CRASH_AFTER_STEP_ENV)
    if wanted and wanted.strip() == str(step):
        os.kill(os.getpid(), SIGKILL)
    return step
