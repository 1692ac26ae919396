"""``gitxact git ARGS...``: the same as ``gx ARGS...`` (``gx`` starts faster)."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import pass_app


@click.command(
    "git",
    short_help="Run git under the locks it needs (the same as gx).",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False, "help_option_names": []},
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def git_command(app: AppContext, args: tuple[str, ...]) -> int:
    """Run git with ARGS under the locks its subcommand needs (same as gx ARGS).

    Every word goes to git unchanged, --help included: `gitxact git --help` is git's
    help. Exit code, stdin, stdout and stderr are git's; exit 3 when the guard refuses
    (gc, prune... while leases are active), 75 when a lock is not obtained in time.

    \b
    Examples:
      gitxact git commit -m "fix parser"
      gitxact -C ../other-worktree git status
    """
    from gitxact.gx import main as gx

    prefix: list[str] = []
    for path in app.paths:  # gitxact -C P git ... == git -C P ...
        prefix += ["-C", path]
    return gx.run([*prefix, *args])
