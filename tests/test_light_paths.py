"""What the hot commands import (issue 14): each pays only for what it uses.

Speed itself is measured by scripts/bench; these tests pin the behaviour that makes it:
an import that comes back (pydantic in `tracker incr`, click in `--version`) fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support.proc import gitxact


def _imported(argv: list[str], cwd: Path) -> tuple[set[str], str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "gitxact", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    modules = {line.split("|")[-1].strip() for line in lines if line.startswith("import time:")}
    return modules, proc.stdout


def test_version_imports_no_click(repo: Path) -> None:
    modules, out = _imported(["--version"], repo)
    assert out.startswith("gitxact, version ")
    assert "click" not in modules


def test_tracker_and_lock_import_no_pydantic(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    hot = (["tracker", "incr", "n"], ["tracker", "set", "k", '"v"'], ["tracker", "get", "k"], ["lock", "--", "true"])
    for argv in hot:
        modules, _ = _imported(argv, repo)
        assert not {"pydantic", "psycopg"} & modules, argv
        assert "click" in modules, "the CLI is click's"
    modules, out = _imported(["tracker", "get", "k", "--json"], repo)
    assert "pydantic" in modules, "--json documents are pydantic models"
    doc = json.loads(out)
    assert (doc["key"], doc["value"], doc["version"], doc["schema"]) == ("k", "v", 1, 1)


def test_status_on_files_imports_no_psycopg(repo: Path) -> None:
    """The database part of `gitxact status` costs nothing on the file backend."""
    assert gitxact("init", cwd=repo).returncode == 0
    for argv in (["status"], ["status", "--json"], ["worktree", "reap", "--json"]):
        modules, _ = _imported(argv, repo)
        assert "psycopg" not in modules, argv
