"""The lean core (issue 26): the rules the hooks, gx and the rich modules share, defined once.

A rule copied into a second module drifts (two ``for_path`` once meant different things),
so each defining spelling below may appear in its one module only, and the lean modules
import no pydantic and nothing of gitxact outside the core.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import gitxact

PACKAGE = Path(gitxact.__file__).parent

LEAN = ("gitxact.leases.reader", "gitxact.tx.journal_reader", "gitxact.locking.naming")

#: What the lean modules may bring in of gitxact: the envelope reader and its helpers.
CORE = {
    "gitxact",
    "gitxact._version",
    "gitxact.errors",
    "gitxact.leases",
    "gitxact.leases.reader",
    "gitxact.locking",
    "gitxact.locking.naming",
    "gitxact.state",
    "gitxact.state.checksums",
    "gitxact.state.envelope",
    "gitxact.tx",
    "gitxact.tx.journal_reader",
    "gitxact.util",
    "gitxact.util.digest",
    "gitxact.util.faults",
    "gitxact.util.files",
    "gitxact.util.jsontext",
}


@pytest.mark.parametrize(
    ("spelling", "home"),
    [
        ('"leases.json"', "leases/reader.py"),
        ('"journal-', "tx/journal_reader.py"),
        ('".new-"', "locking/naming.py"),
        ("CHOOSING_PREFIX =", "locking/naming.py"),
        ('"worktree."', "locking/naming.py"),
        ("def commit_blocker(common_dir", "tx/journal_reader.py"),
        ("def genuine(", "leases/reader.py"),
    ],
)
def test_a_rule_is_spelled_in_its_one_module(spelling: str, home: str) -> None:
    found = sorted(
        str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if spelling in path.read_text(encoding="utf-8")
    )
    assert found == [home], f"{spelling} is defined in {home}; import it from there"


def test_the_lean_core_imports_only_itself_and_the_standard_library() -> None:
    code = "import sys; import " + ", ".join(LEAN) + "; print('\\n'.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    modules = set(proc.stdout.split())
    assert set(LEAN) <= modules
    ours = {name for name in modules if name == "gitxact" or name.startswith("gitxact.")}
    assert ours <= CORE, ours - CORE
    assert not {"pydantic", "click", "typing", "json", "re"} & modules, {
        "pydantic",
        "click",
        "typing",
        "json",
        "re",
    } & modules


def test_the_rich_modules_use_the_lean_definitions() -> None:
    from gitxact.leases import reader, records
    from gitxact.tx import journal, journal_reader

    assert records.LEASES_FILE is reader.LEASES_FILE
    assert records.LeaseState.SCHEMA == reader.SCHEMA
    assert journal.Journal.SCHEMA == journal_reader.SCHEMA
    assert journal.file_name is journal_reader.file_name
