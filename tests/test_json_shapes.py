"""``worktree list --json`` and ``status --json`` print the fields docs/commands.md documents.

Their documents are written by hand, without pydantic (gitxact/worktrees/lease_info.py,
gitxact/health/status.py: those commands must not import it), so nothing generates them
from a schema; the tables in docs/commands.md ("The JSON of `worktree list` and `status`")
are the definition they are held to, field by field and in order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from support.proc import GITXACT, ROOT, gitxact

_HEADER = re.compile(r"\| field of (?P<record>.+?) \| meaning \|")
_ROW = re.compile(r"\| `(?P<field>\w+)` \|")


def documented() -> dict[str, list[str]]:
    """Each table of docs/commands.md headed ``field of RECORD``: its fields, in order."""
    tables: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "docs" / "commands.md").read_text(encoding="utf-8").splitlines():
        header = _HEADER.fullmatch(line)
        if header is not None:
            current = tables.setdefault(header["record"], [])
            continue
        row = _ROW.match(line)
        if current is not None and row is not None:
            current.append(row["field"])
        elif not line.startswith("|"):
            current = None
    return tables


def _json(repo: Path, *args: str) -> Any:
    proc = gitxact(*args, cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_docs_define_every_record() -> None:
    tables = documented()
    assert set(tables) == {
        "`worktree list --json`",
        "a lease",
        "an owner",
        "`status --json`",
        "a repository",
        "a state file",
        "a lock",
        "a party",
        "snapshots",
    }
    assert all(tables.values())


def test_worktree_list_prints_the_documented_fields(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("worktree", "acquire", "agent-1", cwd=repo).returncode == 0
    tables = documented()
    doc = _json(repo, "worktree", "list", "--json")
    assert list(doc) == tables["`worktree list --json`"]
    (lease,) = doc["leases"]
    assert list(lease) == tables["a lease"]
    assert list(lease["owner"]) == tables["an owner"]


def test_status_prints_the_documented_fields(repo: Path) -> None:
    """Under a held repository lock, so that a lock and its holder are in the document too."""
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("worktree", "acquire", "agent-1", cwd=repo).returncode == 0
    tables = documented()
    doc = _json(repo, "lock", "--", *GITXACT, "status", "--json")
    assert list(doc) == tables["`status --json`"]
    assert list(doc["repository"]) == tables["a repository"]
    assert doc["state_files"]
    assert all(list(item) == tables["a state file"] for item in doc["state_files"])
    locks = doc["locks"]
    assert {lock["name"] for lock in locks} >= {"repo"}
    assert all(list(lock) == tables["a lock"] for lock in locks)
    parties = [party for lock in locks for party in lock["holders"] + lock["waiters"]]
    assert parties
    assert all(list(party) == tables["a party"] for party in parties)
    assert list(doc["snapshots"]) == tables["snapshots"]
    assert [list(lease) for lease in doc["leases"]] == [tables["a lease"]]
