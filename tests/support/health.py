"""``gitxact doctor`` as a test reads it: exit code and JSON report, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.proc import gitxact


def doctor(repo: Path, *args: str) -> tuple[int, dict[str, Any]]:
    proc = gitxact("doctor", "--json", *args, cwd=repo)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout)
