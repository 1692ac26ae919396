"""A test switch: ``GITXACT_TEST_TRACE=FILE`` makes leasing write down when its steps begin and end.

One JSON line per event (``event``, ``agent``, ``pid``, ``ns``: the system-wide monotonic
clock, comparable between processes), appended with one ``write`` so lines from processes
running at once never interleave. The tests read it to prove that the checkouts of
acquires made at once overlapped (behaviour, not speed). It does nothing unless set.
"""

from __future__ import annotations

import json
import os
import time

TRACE_ENV = "GITXACT_TEST_TRACE"


def trace(event: str, agent: str) -> None:
    target = os.environ.get(TRACE_ENV)
    if not target:
        return
    line = json.dumps({"event": event, "agent": agent, "pid": os.getpid(), "ns": time.monotonic_ns()})
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)
