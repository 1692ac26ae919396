"""What every command shares: the ``-C`` path, the workspace, output helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.fast import TIMEOUT_MIN, TIMEOUT_OPTION

if TYPE_CHECKING:
    from gitxact.core.plain import JsonDocument


pass_app = click.make_pass_decorator(AppContext)


def emit(doc: JsonDocument) -> None:
    """Print one JSON document on stdout (the whole of stdout in ``--json`` mode)."""
    click.echo(doc.to_json())


def json_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(func)


def dirty_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--dirty/--no-dirty`` of the lease listings (``worktree list``, ``status``).

    Whether a worktree holds uncommitted work takes a ``git status`` in it: one process
    per lease, the only part of a listing that grows with the number of leases (see the
    bench's lease-scaling rows, issue 14). A person reading the table asks for it with ``--dirty``; a
    ``--json`` document keeps it by default, since a program may decide on it and must not
    silently get "unknown". Nothing gitxact decides depends on a listing: release, reap and
    ``snapshots restore`` run their own check, in the worktree, under its lock, at the moment
    they act (a listing's verdict is stale as soon as it is printed).
    """
    return click.option(
        "--dirty/--no-dirty",
        default=None,
        help="Tell dirty worktrees from clean ones (a git status in each; default: only with --json).",
    )(func)


def sizes_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--sizes`` of the lease listings: each lease's size on disk is the one recorded when
    it was made; walking every worktree (a stat per file) is asked for, never the default."""
    return click.option(
        "--sizes", is_flag=True, help="Measure each worktree's size on disk now (a walk of each) and record it."
    )(func)


def show(doc: JsonDocument | Callable[[], JsonDocument], as_json: bool, text: Callable[[], str]) -> None:
    """The one way a command prints its result: the JSON document, or *text()* for people.

    *doc* may be a function that builds it, so plain output never imports pydantic.
    """
    if as_json:
        click.echo((doc() if callable(doc) else doc).to_json())
    else:
        click.echo(text())


def lock_timeout_option(flag: str = TIMEOUT_OPTION) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """How long to wait for gitxact's locks; ``--lock-timeout`` where ``--timeout`` means something else."""
    return click.option(
        flag,
        flag.lstrip("-").replace("-", "_"),
        type=click.FloatRange(min=TIMEOUT_MIN),
        metavar="SECONDS",
        help="Give up waiting for a lock after SECONDS (exit 75). Default: git config gitxact.lockTimeout (60).",
    )


timeout_option = lock_timeout_option()


def conflicts_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--conflicts`` of the lease listings: what each branch would conflict with, by ``git
    merge-tree`` (one per pair of branches: asked for, never on by default)."""
    func = click.option(
        "--onto", "conflicts_onto", metavar="TARGET", help="With --conflicts: the target [the main worktree's branch]."
    )(func)
    return click.option(
        "--conflicts",
        is_flag=True,
        help="Show what each lease's branch would conflict with: the target and the other leases.",
    )(func)


def conflicts_target(app: AppContext, conflicts: bool, onto: str | None) -> str | None:
    """The target to reckon conflicts against, or ``None`` when they were not asked for."""
    if not conflicts:
        if onto is not None:
            raise click.UsageError("--onto goes with --conflicts")
        return None
    if onto is not None:
        return onto
    from gitxact.land.foresight import default_target

    return default_target(app.workspace())
