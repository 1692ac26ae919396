"""Test-only crash switches.

``GITXACT_TEST_CRASHPOINT`` (a comma-separated list of crash point names) makes the
process SIGKILL itself when it reaches one of those points, so the test suite can
prove that a crash at that exact moment is recoverable. It is documented in the
README as a test switch; it has no effect unless set.
"""

from __future__ import annotations

import os
import signal

CRASHPOINT_ENV = "GITXACT_TEST_CRASHPOINT"


def crashpoint(name: str) -> None:
    """Die here, as a power cut would, if the test switch names this point."""
    wanted = os.environ.get(CRASHPOINT_ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
