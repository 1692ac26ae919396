"""What the hot commands import (issue 14): each pays only for what it uses.

Speed itself is measured by scripts/bench; these tests pin the behaviour that makes it:
an import that comes back (pydantic in `tracker incr`, click in `--version`) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

from support.imports import imported
from support.proc import gitxact


def _imported(argv: list[str], cwd: Path) -> tuple[set[str], str]:
    modules, proc = imported(["-m", "gitxact", *argv], cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return modules, proc.stdout


def test_version_imports_no_click(repo: Path) -> None:
    modules, out = _imported(["--version"], repo)
    assert out.startswith("gitxact, version ")
    assert "click" not in modules
    # cli/entry.py's start-up trick (TYPE_CHECKING = False): docs/benchmark.md, "Start-up tricks"
    assert "typing" not in modules


def test_tracker_and_lock_import_no_pydantic(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    hot = (["tracker", "incr", "n"], ["tracker", "set", "k", '"v"'], ["tracker", "get", "k"], ["lock", "--", "true"])
    for argv in hot:
        modules, _ = _imported(argv, repo)
        assert not {"pydantic", "psycopg"} & modules, argv
        # tracker incr and lock -- CMD skip click too (gitxact/cli/fast.py, tests/test_fast_cli.py)
        assert ("click" in modules) == (argv[1] in ("set", "get")), argv
    modules, out = _imported(["tracker", "get", "k", "--json"], repo)
    assert "pydantic" in modules, "--json documents are pydantic models"
    doc = json.loads(out)
    assert (doc["key"], doc["value"], doc["version"], doc["schema"]) == ("k", "v", 1, 1)


def test_status_and_worktree_list_import_no_pydantic(repo: Path) -> None:
    """Their documents are plain and the state files they verify (meta, tracker, leases,
    recover) are validated by hand; the journal and landing models, which still use
    pydantic, are imported only when such a file exists."""
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0
    assert gitxact("worktree", "acquire", "agent-1", "--json", cwd=repo).returncode == 0
    assert gitxact("recover", cwd=repo).returncode == 0
    for argv in (["status"], ["status", "--json"], ["status", "--dirty"], ["worktree", "list"]):
        modules, out = _imported(argv, repo)
        assert not {"pydantic", "psycopg"} & modules, argv
        assert "agent-1" in out, argv
    modules, out = _imported(["worktree", "list", "--json"], repo)
    assert "pydantic" not in modules
    lease = json.loads(out)["leases"][0]
    assert (lease["agent"], lease["dirty"], lease["phase"]) == ("agent-1", False, "active")


def test_status_on_files_imports_no_psycopg(repo: Path) -> None:
    """The database part of `gitxact status` costs nothing on the file backend."""
    assert gitxact("init", cwd=repo).returncode == 0
    for argv in (["status"], ["status", "--json"], ["worktree", "reap", "--json"]):
        modules, _ = _imported(argv, repo)
        assert "psycopg" not in modules, argv
