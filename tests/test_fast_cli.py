"""The click-free path of `tracker incr` and `lock -- CMD` (gitxact/cli/fast.py) answers
exactly as click does: every shape is run both ways (GITXACT_NO_FAST=1 is click's) and
the exit code, stdout, stderr and the tracker's state compared."""

from __future__ import annotations

import shutil
from pathlib import Path

import click
import pytest
from support.imports import imported
from support.proc import gitxact

SHAPES = [
    ["tracker", "incr", "k"],
    ["tracker", "incr", "k", "5"],
    ["tracker", "incr", "k", "--timeout", "3"],
    ["tracker", "incr", "--timeout=3", "k", "007"],
    ["-C", "sub", "tracker", "incr", "k"],
    ["-C", "sub", "-C", "..", "tracker", "incr", "k", "2"],
    ["tracker", "incr", "s"],  # not an integer: the library's refusal
    ["tracker", "incr", "bad..key"],
    ["tracker", "incr", "k", "x"],
    ["tracker", "incr", "k", "-3"],
    ["tracker", "incr"],
    ["tracker", "incr", "k", "1", "2"],
    ["tracker", "incr", "k", "--timeout", "-1"],
    ["tracker", "incr", "k", "--timeout"],
    ["-C", "nowhere", "tracker", "incr", "k"],
    ["lock", "--", "sh", "-c", "echo held; exit 3"],
    ["lock", "--shared", "--timeout", "5", "--", "true"],
    ["lock", "--exclusive", "--timeout=5", "--", "sh", "-c", "echo $GITXACT_LOCKS | grep -c repo"],
    ["lock", "--name", "deploy", "--", "echo", "named"],
    ["lock", "--name=deploy", "--shared", "--", "true"],
    ["lock", "true"],
    ["lock", "--"],
    ["lock", "--name", "bad name", "--", "true"],
    ["lock", "--name", "tracker", "--", "true"],  # gitxact's own resource: refused
    ["lock", "--", "no-such-program-here"],
    ["lock", "--timeout", "nan", "--", "true"],
]


def _state(repo: Path) -> str:
    return gitxact("tracker", "get", cwd=repo).stdout


@pytest.mark.parametrize("argv", SHAPES, ids=[" ".join(shape) for shape in SHAPES])
def test_fast_path_answers_as_click(repo: Path, tmp_path: Path, argv: list[str]) -> None:
    (repo / "sub").mkdir()
    assert gitxact("tracker", "set", "s", '"text"', cwd=repo).returncode == 0
    results = []
    for name, env in (("fast", {}), ("click", {"GITXACT_NO_FAST": "1"})):
        copy = tmp_path / name / "repo"
        shutil.copytree(repo, copy, symlinks=True)
        proc = gitxact(*argv, cwd=copy, env=env)
        assert "Traceback" not in proc.stderr
        same = [text.replace(str(copy), "REPO") for text in (proc.stdout, proc.stderr, _state(copy))]
        results.append((proc.returncode, *same))
    assert results[0] == results[1]


def test_fast_path_counts_like_click(repo: Path) -> None:
    """The same key, incremented alternately by both paths: one sequence of values."""
    seen = []
    for n in range(6):
        env = {"GITXACT_NO_FAST": "1"} if n % 2 else {}
        seen.append(gitxact("tracker", "incr", "c", "2", cwd=repo, env=env).stdout.strip())
    assert seen == ["2", "4", "6", "8", "10", "12"]


def test_fast_path_imports_no_click(repo: Path) -> None:
    for argv in (["tracker", "incr", "n"], ["lock", "--", "true"]):
        modules, proc = imported(["-m", "gitxact", *argv], repo)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "gitxact.cli.fast" in modules
        assert not {"click", "pydantic"} & modules, argv


def _options(command: click.Command) -> dict[str, click.Parameter]:
    return {opt: param for param in command.params for opt in param.opts if opt.startswith("-")}


def test_the_click_commands_are_declared_with_the_fast_words() -> None:
    """One definition of the two command lines: the click declarations use cli/fast.py's words,
    and every option click knows there is one the fast parser reads (or one it leaves to click)."""
    from gitxact.cli import fast
    from gitxact.cli.main import cli

    ctx = click.Context(cli)
    root = _options(cli)
    assert fast.PATH_OPTION in root
    tracker = cli.get_command(ctx, "tracker")
    lock = cli.get_command(ctx, "lock")
    assert isinstance(tracker, click.Group)
    assert lock is not None
    incr = tracker.get_command(ctx, "incr")
    assert incr is not None
    assert set(_options(incr)) == {fast.TIMEOUT_OPTION, "--json"}  # --json is click's
    (amount,) = (param for param in incr.params if param.name == "amount")
    assert amount.default == fast.DEFAULT_AMOUNT
    assert set(_options(lock)) == {fast.SHARED_OPTION, fast.EXCLUSIVE_OPTION, fast.NAME_OPTION, fast.TIMEOUT_OPTION}
    for command in (incr, lock):
        timeout = _options(command)[fast.TIMEOUT_OPTION]
        assert isinstance(timeout.type, click.FloatRange)
        assert timeout.type.min == fast.TIMEOUT_MIN
    assert lock.make_context("lock", ["--", "true"]).params["mode"] == fast.DEFAULT_MODE
