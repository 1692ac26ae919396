"""Worker processes the tests (and scripts/bench) start as real, separate processes.

Run as ``python tests/workers.py COMMAND ARGS...``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitxact import Workspace


def contend(repo: str, seconds: str, out: str, hold_ms: str, counter: str) -> int:
    """Take the exclusive repository lock again and again; log every grant.

    Inside the lock: a read-modify-write of *counter* (a lost update would show),
    then hold for *hold_ms*.
    """
    ws = Workspace(repo, timeout=-1)
    deadline = time.monotonic() + float(seconds)
    hold = float(hold_ms) / 1000
    records = []
    while time.monotonic() < deadline:
        with ws.lock("exclusive") as grant:
            path = Path(counter)
            value = int(path.read_text() or "0") if path.exists() else 0
            path.write_text(str(value + 1))
            time.sleep(hold)
        records.append(
            {
                "pid": os.getpid(),
                "chosen": grant.chosen_ns,
                "visible": grant.visible_ns,
                "granted": grant.granted_ns,
                "waited": grant.waited,
            }
        )
    Path(out).write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return 0


def hold(repo: str, mode: str, ready: str, release: str) -> int:
    """Hold the repository lock until the file *release* appears."""
    ws = Workspace(repo, timeout=-1)
    with ws.lock("shared" if mode == "shared" else "exclusive"):
        Path(ready).write_text(str(os.getpid()))
        while not Path(release).exists():
            time.sleep(0.01)
    return 0


def main() -> int:
    command, *args = sys.argv[1:]
    return {"contend": contend, "hold": hold}[command](*args)


if __name__ == "__main__":
    raise SystemExit(main())
