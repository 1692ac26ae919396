"""Which modules a Python run imported: what the light-path tests (issue 14) pin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def imported(argv: list[str], cwd: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Run ``python -X importtime ARGV`` in *cwd*; the modules it imported, and the run itself."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], cwd=cwd, capture_output=True, text=True, check=False
    )
    lines = proc.stderr.splitlines()
    return {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}, proc
