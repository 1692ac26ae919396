"""``gitxact lock -- CMD``: declared with :mod:`gitxact.cli.fast`'s words, run by its body."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import pass_app, timeout_option
from gitxact.cli.fast import DEFAULT_MODE, EXCLUSIVE_OPTION, NAME_OPTION, SHARED_OPTION, run_under_lock
from gitxact.locking.tickets import EXCLUSIVE, SHARED

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitxact.locking.tickets import Mode


def _mode_option(flag: str, mode: Mode, help: str) -> Callable[[click.decorators.FC], click.decorators.FC]:
    """One of the mode flags, which set ``mode``; the fast path's default mode is click's too."""
    return click.option(flag, "mode", flag_value=mode, default=mode == DEFAULT_MODE, help=help)


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_mode_option(SHARED_OPTION, SHARED, "Take the repository lock shared (readers).")
@_mode_option(EXCLUSIVE_OPTION, EXCLUSIVE, "Take it exclusive (default).")
@click.option(
    NAME_OPTION,
    metavar="NAME",
    help="Hold the named lock NAME instead (on the coordination backend: every host with PostgreSQL).",
)
@timeout_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def lock(app: AppContext, mode: str, name: str | None, timeout: float | None, command: tuple[str, ...]) -> int:
    """Run COMMAND while holding the repository lock (or the named lock NAME); exit with its code.

    Exit 75 if the lock is not obtained within the timeout; the message names the
    holder. Nested gitxact commands inherit the repository lock instead of waiting
    for it. A named lock serializes what you choose (a deploy, a migration) and
    nothing of git's: with the PostgreSQL backend, across every host of the project.

    \b
    Examples:
      gitxact lock -- git gc
      gitxact lock --shared --timeout 5 -- ./scripts/read-only-report
      gitxact lock --name deploy -- ./scripts/deploy
    """
    return run_under_lock(app, mode == SHARED, name, timeout, command)
