"""The lean core (issue 26): the rules the hooks, gx and the rich modules share, defined once.

A rule copied into a second module drifts (two ``for_path`` once meant different things),
so each defining spelling below may appear in its one module only, and the lean modules
import no pydantic and nothing of gitxact outside the core.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.imports import imported
from support.proc import ROOT, gitxact

import gitxact as package

PACKAGE = Path(package.__file__).parent

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
    "gitxact.util.startup",
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
        ("def spelled(", "util/files.py"),
        ("NAME_FIRST = ", "util/files.py"),
        ("\nLOCATING_VARS = (", "git/lite.py"),
        ("def not_started(", "git/lite.py"),
        ("def worktree_ids(", "git/lite.py"),
        ('"GIT_OPTIONAL_LOCKS"', "git/lite.py"),
        ('TIMEOUT_OPTION = "', "cli/fast.py"),
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

    # One definition, imported where it is used: the rich module keeps no copy (nor re-export).
    assert not hasattr(records, "LEASES_FILE")
    assert not hasattr(records, "hash_token")
    assert records.LeaseState.SCHEMA == reader.SCHEMA
    assert journal.Journal.SCHEMA == journal_reader.SCHEMA
    assert journal.file_name is journal_reader.file_name


#: String constants two modules define alike by coincidence, not as one rule: each says why.
COINCIDENCES = {
    " \t\n\r": "JSON's whitespace (util/jsontext) and the whitespace git splits an alias at (gx/cmdline)",
    "files": "the trash's folder of a lease's files (worktrees/trash) and the files backend's name (backends/choice)",
    "landed": "an integration rule's name (worktrees/integration) and the landed-branches lock (worktrees/landed)",
}

#: Modules not yet brought to one spelling of gitxact's variables, each with why it waits.
ENV_NOT_YET = {
    "demo/agent.py": "the provisioning work's file while this landed: GITXACT_AGENT/_LEASE_TOKEN spelled out"
}


def _module_strings() -> dict[object, set[str]]:
    """Each module-level ``NAME = <str or tuple of str>`` of gitxact: its value, and the modules defining it."""
    found: dict[object, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
            if value is None:
                continue
            try:
                literal = ast.literal_eval(value)
            except ValueError:
                continue
            plain = isinstance(literal, str) or (
                isinstance(literal, tuple) and literal and all(isinstance(item, str) for item in literal)
            )
            if plain and len(literal) >= 2:
                found.setdefault(literal, set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_no_string_constant_is_defined_in_two_modules() -> None:
    twice = {value: sorted(homes) for value, homes in _module_strings().items() if len(homes) > 1}
    assert set(twice) <= set(COINCIDENCES), {value: twice[value] for value in set(twice) - set(COINCIDENCES)}


def test_each_gitxact_variable_is_spelled_in_one_module() -> None:
    """``GITXACT_*`` as a whole string: one module names it (a constant), the others import that."""
    spelled: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        where = str(path.relative_to(PACKAGE))
        if where in ENV_NOT_YET:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _VARIABLE.fullmatch(node.value):
                spelled.setdefault(node.value, set()).add(where)
    twice = {name: sorted(homes) for name, homes in spelled.items() if len(homes) > 1}
    assert not twice, twice
    assert {"GITXACT_AGENT", "GITXACT_LEASE_TOKEN", "GITXACT_INTERNAL", "GITXACT_LOCKS"} <= set(spelled)


_VARIABLE = re.compile(r"GITXACT_[A-Z_]+")

#: What gx and the hooks may import of gitxact: today's sets (issue 26: no more, ever; fewer is welcome).
GX_READ_ONLY = {
    *("gitxact", "gitxact._version", "gitxact.errors", "gitxact.git", "gitxact.git.lite", "gitxact.git.locate"),
    *("gitxact.gx", "gitxact.gx.cmdline", "gitxact.gx.main", "gitxact.gx.refresh", "gitxact.gx.rules"),
    *("gitxact.locking", "gitxact.locking.kernel", "gitxact.locking.naming"),
    *("gitxact.util", "gitxact.util.faults", "gitxact.util.files", "gitxact.util.startup", "gitxact.util.value"),
}
GX_LOCKED = GX_READ_ONLY - {"gitxact.gx.refresh"} | {
    *("gitxact.error_handler", "gitxact.git.started", "gitxact.gx.guard", "gitxact.gx.locked"),
    *("gitxact.leases", "gitxact.leases.reader", "gitxact.locking.locks", "gitxact.locking.tickets"),
    *("gitxact.state", "gitxact.state.checksums", "gitxact.state.envelope"),
    *("gitxact.util.console", "gitxact.util.digest", "gitxact.util.eventlog", "gitxact.util.identity"),
    *("gitxact.util.jsontext", "gitxact.util.names", "gitxact.util.tie"),
}
HOOKS = {
    *("gitxact", "gitxact._version", "gitxact.errors", "gitxact.git", "gitxact.git.lite"),
    *("gitxact.hooks", "gitxact.hooks.policy", "gitxact.leases", "gitxact.leases.reader"),
    *("gitxact.state", "gitxact.state.checksums", "gitxact.state.envelope", "gitxact.tx", "gitxact.tx.journal_reader"),
    *("gitxact.util", "gitxact.util.digest", "gitxact.util.faults", "gitxact.util.files", "gitxact.util.jsontext"),
    "gitxact.util.startup",
}


def _ours(argv: list[str], cwd: Path) -> set[str]:
    modules, proc = imported(argv, cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {name for name in modules if name == "gitxact" or name.startswith("gitxact.")}


def test_gx_and_the_hooks_import_only_their_lean_sets(repo: Path) -> None:
    assert gitxact("worktree", "acquire", "agent-1", cwd=repo).returncode == 0  # a leases.json to read
    gx = "import sys; from gitxact.gx.main import main; sys.exit(main())"
    read_only = _ours(["-c", gx, "status"], repo)
    assert "gitxact.gx.refresh" in read_only
    assert read_only <= GX_READ_ONLY, read_only - GX_READ_ONLY
    locked = _ours(["-c", gx, "commit", "-q", "--allow-empty", "-m", "x"], repo)
    assert "gitxact.gx.locked" in locked
    assert locked <= GX_LOCKED, locked - GX_LOCKED
    hooks = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import gitxact.hooks.policy, gitxact.tx.journal_reader"
    loaded = _ours(["-I", "-S", "-c", hooks], repo)
    assert "gitxact.hooks.policy" in loaded
    assert loaded <= HOOKS, loaded - HOOKS


_START_UP = re.compile(
    r"start-up(?: \([^)]*\))?:\s+saves\s+over\s+0\.1\s+S\s+on\s[^()]*\(docs/benchmark\.md,\s+\"Start-up tricks\"\)",
    re.IGNORECASE,
)
_PATH = re.compile(r"`((?:[a-z_]+/)+[a-z_]+)(?:\.py|\.[A-Za-z_]+)?`|`(__init__)`")
_AVOIDS = re.compile(r"(?:not|without) `?(\w+)`?")
#: Named in a kept row, its one line not written yet, and why.
START_UP_NOT_YET: dict[str, str] = {}


def _kept_tricks() -> list[tuple[str, str]]:
    """The kept rows of docs/benchmark.md's "Start-up tricks" table: (trick, where)."""
    text = (ROOT / "docs" / "benchmark.md").read_text(encoding="utf-8")
    table = text.split("### Start-up tricks", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    rows = [[cell.strip() for cell in line.strip("|").split(" | ")] for line in lines]
    kept, trick = [], ""
    for row in rows[1:]:
        trick = trick if row[0] == "the same" else row[0]
        if row[-1] == "kept":
            kept.append((trick, row[1]))
    return kept


def _code_file(match: re.Match[str]) -> str:
    if match[2]:
        return "gitxact/__init__.py"
    return match[1] if match[1].startswith("bin/") else f"gitxact/{match[1]}.py"


def test_the_start_up_tricks_are_the_documented_ones() -> None:
    """Each ``start-up:`` line stands in a file a kept row of the table names, each file a kept
    row names carries its line, and the bench measures the modules the kept rows avoid."""
    kept = _kept_tricks()
    named = {_code_file(match) for trick, where in kept for match in _PATH.finditer(f"{trick} {where}")}
    carrying = {
        str(path.relative_to(ROOT))
        for path in [*PACKAGE.rglob("*.py"), ROOT / "bin" / "gx"]
        if _START_UP.search(path.read_text(encoding="utf-8"))
    }
    assert carrying <= named, carrying - named
    assert named - carrying == set(START_UP_NOT_YET), named - carrying
    avoided = {_AVOIDS.findall(trick)[-1] for trick, _ in kept}
    bench = ast.parse((ROOT / "scripts" / "bench.py").read_text(encoding="utf-8"))
    (tricks,) = [
        ast.literal_eval(node.value)
        for node in bench.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["TRICKS"]
    ]
    assert {module for _, module, _ in tricks} == avoided
