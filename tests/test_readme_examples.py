"""Every example in the README and in docs/ runs as printed, or says why it cannot.

Each ```sh/```bash/```console/```python/```yaml block in README.md, CONTRIBUTING.md and
docs/*.md is preceded by a
marker: ``<!-- example: run -->`` or ``<!-- example: skip (reason) -->``. A block marked
to run is run, exactly as printed, in a fresh repository (one commit on ``main``) with
this gitxact's ``.venv/bin`` first on ``PATH``: shell with ``bash -e -o pipefail`` (so a
command failing midway fails the example), Python with the venv's interpreter, and
YAML as the repository's ``.pre-commit-config.yaml`` under the real pre-commit framework.
It must exit 0 and print no traceback. A new block without a marker fails the suite.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.proc import ROOT, git

from fixtures.repos import make_repo

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "CONTRIBUTING.md"]
BIN = Path(sys.executable).parent
LANGUAGES = ("sh", "bash", "console", "python", "yaml")
_MARKER = re.compile(r"<!-- example: (run|skip \((?P<why>.+)\)) -->")


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    language: str
    code: str
    marker: str | None
    why: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}:{self.language}"


def examples(text: str, page: str = "README.md") -> list[Example]:
    """The fenced blocks in a checked language, each with the marker on the line before it."""
    found: list[Example] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)\s*", lines[i])
        if fence is None:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), len(lines))
        language = fence.group(1)
        if language in LANGUAGES:
            before = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = _MARKER.fullmatch(before.strip())
            found.append(
                Example(
                    page=page,
                    line=i + 1,
                    language=language,
                    code="\n".join(lines[i + 1 : end]) + "\n",
                    marker=None if match is None else match.group(1).split(" ", 1)[0],
                    why=None if match is None else match.group("why"),
                )
            )
        i = end + 1
    return found


ALL = [
    example
    for page in PAGES
    if page.exists()
    for example in examples(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
]
RUN = [example for example in ALL if example.marker == "run"]


def test_every_example_is_marked_to_run_or_to_be_skipped_with_a_reason() -> None:
    unmarked = [example.id for example in ALL if example.marker is None]
    assert not unmarked, f"add <!-- example: run --> or <!-- example: skip (why) --> before {unmarked}"
    assert all(example.why for example in ALL if example.marker == "skip")
    languages = {example.language for example in RUN}
    assert {"sh", "python", "yaml"} <= languages, "the shell, library and pre-commit examples all run"


def test_the_marker_parser_sees_what_a_reader_sees() -> None:
    sample = "text\n<!-- example: skip (needs a network) -->\n```sh\necho hi\n```\n\n```python\nx = 1\n```\n"
    first, second = examples(sample)
    assert (first.marker, first.why, first.code) == ("skip", "needs a network", "echo hi\n")
    assert (second.marker, second.line) == (None, 7)


def _console_commands(code: str) -> str:
    """A ```console block: the ``$ `` lines are what a person typed; the rest is output."""
    return "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))


@pytest.mark.parametrize("example", RUN, ids=[example.id for example in RUN])
def test_readme_example_runs_as_printed(example: Example, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"),
    }
    env.pop("PYTHONPATH", None)  # the installed gitxact, as a user has it

    if example.language == "python":
        script = tmp_path / "example.py"
        script.write_text(example.code)
        argv = [str(BIN / "python"), str(script)]
    elif example.language == "yaml":
        (repo / ".pre-commit-config.yaml").write_text(example.code)
        git("add", ".pre-commit-config.yaml", cwd=repo)
        argv = [str(BIN / "python"), "-m", "pre_commit", "run", "--all-files"]
    else:
        code = _console_commands(example.code) if example.language == "console" else example.code
        argv = ["bash", "-e", "-o", "pipefail", "-c", code]
    proc = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=120, check=False)
    shown = f"{example.id}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, shown
    for stream in (proc.stdout, proc.stderr):
        assert "Traceback" not in stream, shown
        assert "internal error" not in stream, shown
    if example.language == "yaml":
        assert re.search(r"gitxact guard\.+Passed", proc.stdout), shown
