"""``gitxact tdd red/green/refactor/done/abort``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, lock_timeout_option, pass_app, show

if TYPE_CHECKING:
    from gitxact.tx.journal import TxRecord
    from gitxact.tx.tdd_journaled import StepName


@click.group()
def tdd() -> None:
    """TDD sequences: commit a failing test, then the code that makes it pass, or nothing.

    `red` begins a sequence (a transaction) and commits tests only if the check FAILS;
    `green` commits the implementation only if the check PASSES, else the whole
    sequence is rolled back to where it began (your earlier uncommitted work included).
    Each step commits exactly the PATHs given. The check's output streams to stderr and
    is kept in a log under <git-common-dir>/gitxact/logs/.

    \b
    Examples:
      gitxact tdd red --check "pytest -q tests/test_parser.py" tests/test_parser.py
      gitxact tdd green --check "pytest -q tests/test_parser.py" src/parser.py
      gitxact tdd refactor --check "pytest -q" src/parser.py
      gitxact tdd done
    """


def _check_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--check",
            "check",
            required=True,
            metavar="CMD",
            help="The test command; run by /bin/sh -c if it has shell syntax (; && | $ globs...), else as words.",
        ),
        click.option("--shell", is_flag=True, help="Run CMD with /bin/sh -c even if it is plain words."),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Stop the check after SECONDS (0: no limit). Default: git config gitxact.checkTimeout (600).",
        ),
        lock_timeout_option("--lock-timeout"),
        click.option("-m", "--message", metavar="MSG", help="Commit message (default: 'TDD RED: <paths>' ...)."),
        json_option,
        click.argument("paths", nargs=-1, required=True, metavar="PATH..."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _run(
    app: AppContext,
    op: StepName,
    check: str,
    shell: bool,
    timeout: float | None,
    lock_timeout: float | None,
    message: str | None,
    as_json: bool,
    paths: tuple[str, ...],
    red_exit: str | None = None,
) -> int:
    from gitxact.tx import checks
    from gitxact.tx.results import CheckDoc, TddStepDoc
    from gitxact.tx.tdd import run_step

    ws = app.workspace(timeout=lock_timeout)
    limit = ws.settings.check_timeout if timeout is None else timeout
    codes = None if red_exit is None else checks.parse_codes(red_exit)
    spec = checks.parse(check, shell=shell, timeout=limit, red_exit=codes)
    result = run_step(ws, op, spec, paths, message=message)
    assert result.check is not None  # noqa: S101 - every red/green/refactor runs its check
    expected = ", as red expects" if op == "red" else ""
    click.echo(f"gitxact: check {result.check.describe()}{expected}; output kept in {result.check.log}", err=True)
    tdd_state = result.tx.tdd
    doc = TddStepDoc(
        tx_id=result.tx.tx_id,
        step=op,
        commit=result.commit,
        commits=tdd_state.commits if tdd_state else [],
        closed=False,
        check=CheckDoc.of(result.check),
    )
    show(doc, as_json, lambda: f"TDD {op.upper()} committed {str(result.commit)[:12]} ({result.tx.tx_id})")
    return 0


@tdd.command()
@_check_options
@click.option(
    "--red-exit",
    metavar="CODES",
    help="The exit codes (e.g. 1 or 1,3) that mean CMD's tests failed; any other is refused.",
)
@pass_app
def red(app: AppContext, /, **options: Any) -> int:
    """Commit tests (PATHs); CMD must FAIL, else nothing is committed (exit 3).

    Begins a sequence if none is open. A check that passes tests nothing new; one that
    times out is a hang, not a failing test: both are refused. So is a failure that ran
    no test: killed by a signal, pytest's exit 2-5 (interrupted, internal or usage error,
    no tests collected), or, with --red-exit, a code not listed; 126/127 (not runnable)
    exit 2.

    \b
    Examples:
      gitxact tdd red --check "pytest -q tests/test_parser.py" tests/test_parser.py
      gitxact tdd red --check "cargo test parser" --red-exit 101 tests/parser.rs
    """
    return _run(app, "red", **options)


@tdd.command()
@_check_options
@pass_app
def green(app: AppContext, /, **options: Any) -> int:
    """Commit the implementation (PATHs); CMD must PASS.

    If it fails or times out, the whole sequence is rolled back to its start: HEAD,
    branch, index and files, including work you had before `tdd red` (exit 1).

    \b
    Example:
      gitxact tdd green --check "pytest -q tests/test_parser.py" src/parser.py
    """
    return _run(app, "green", **options)


@tdd.command()
@_check_options
@pass_app
def refactor(app: AppContext, /, **options: Any) -> int:
    """Commit a refactor (PATHs); CMD must still pass, else back to the last passing commit (exit 1).

    \b
    Example:
      gitxact tdd refactor --check "pytest -q" src/parser.py
    """
    return _run(app, "refactor", **options)


def _closing(app: AppContext, action: Callable[..., TxRecord], as_json: bool, verb: str, timeout: float | None) -> int:
    from gitxact.tx.results import TddStepDoc

    record = action(app.workspace(timeout=timeout))
    commits = record.tdd.commits if record.tdd else []
    closed = app.workspace().transactions.current() is None
    show(
        TddStepDoc(tx_id=record.tx_id, step=verb, commit=None, commits=commits, closed=closed, check=None),
        as_json,
        lambda: f"TDD sequence {verb} ({record.tx_id})",
    )
    return 0


@tdd.command()
@lock_timeout_option("--lock-timeout")
@json_option
@pass_app
def done(app: AppContext, lock_timeout: float | None, as_json: bool) -> int:
    """Close the sequence, keeping its commits (refused at red: the test still fails).

    \b
    Example:
      gitxact tdd done
    """
    from gitxact.tx.tdd import done as finish

    return _closing(app, finish, as_json, "done", lock_timeout)


@tdd.command()
@lock_timeout_option("--lock-timeout")
@json_option
@pass_app
def abort(app: AppContext, lock_timeout: float | None, as_json: bool) -> int:
    """Roll the whole sequence back to where it began: HEAD, branch, index and files.

    \b
    Example:
      gitxact tdd abort
    """
    from gitxact.tx.tdd import abort as undo

    return _closing(app, undo, as_json, "aborted", lock_timeout)
