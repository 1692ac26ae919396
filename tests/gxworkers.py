"""Writer processes for the gx concurrency tests and scripts/bench.

Run as ``python tests/gxworkers.py writer WORKTREE NAME COUNT OUT GO [git|gx]``: wait
until the file GO exists (so all writers start together), then COUNT times write
``NAME-i.txt``, ``add`` it and ``commit`` only that path, each through gx (or raw git),
and record every command's exit code in OUT (JSON lines).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

GX = [sys.executable, "-c", "import sys; from gitxact.gx import main; sys.exit(main())"]


def writer(worktree: str, name: str, count: str, out: str, go: str, tool: str = "gx") -> int:
    base = GX if tool == "gx" else ["git"]
    deadline = time.monotonic() + 120
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            return 2
        time.sleep(0.005)
    records = []
    for i in range(int(count)):
        path = f"{name}-{i}.txt"
        Path(worktree, path).write_text(f"{name} {i}\n")
        for argv in (["add", "--", path], ["commit", "-q", "-m", f"{name} {i}", "--", path]):
            proc = subprocess.run([*base, *argv], cwd=worktree, capture_output=True, text=True, check=False)
            records.append({"argv": argv, "code": proc.returncode, "stderr": proc.stderr[-300:]})
    Path(out).write_text("".join(json.dumps(r) + "\n" for r in records))
    return 0


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    raise SystemExit({"writer": writer}[command](*args))
