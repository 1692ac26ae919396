"""``gitxact lock -- CMD``."""

from __future__ import annotations

import click

from gitxact.cli.context import AppContext, pass_app, timeout_option
from gitxact.util import process
from gitxact.util.startup import child_environ


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--shared", "mode", flag_value="shared", help="Take the repository lock shared (readers).")
@click.option("--exclusive", "mode", flag_value="exclusive", default=True, help="Take it exclusive (default).")
@timeout_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def lock(app: AppContext, mode: str, timeout: float | None, command: tuple[str, ...]) -> int:
    """Run COMMAND while holding the repository lock; exit with its exit code.

    Exit 75 if the lock is not obtained within the timeout; the message names the
    holder. Nested gitxact commands inherit the lock instead of waiting for it.

    \b
    Examples:
      gitxact lock -- git gc
      gitxact lock --shared --timeout 5 -- ./scripts/read-only-report
    """
    ws = app.workspace(timeout=timeout)
    with ws.lock("shared" if mode == "shared" else "exclusive", timeout):
        env = {**child_environ(), **ws.locks.child_env()}
        return process.run_foreground(command, env=env)
