"""``gitxact gc [--force] [GIT-GC-ARGS...]``."""

from __future__ import annotations

import click

from gitxact.cli.context import AppContext, pass_app, timeout_option


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--force", is_flag=True, help="Run even while leases are active (git gc's own --force: after --).")
@timeout_option
@click.argument("gc_args", nargs=-1, type=click.UNPROCESSED, metavar="[GIT-GC-ARGS]...")
@pass_app
def gc(app: AppContext, force: bool, timeout: float | None, gc_args: tuple[str, ...]) -> int:
    """Run `git gc` under the exclusive repository lock; exit with git's code.

    Refused (exit 3, listing the leases) while any worktree lease is active, because
    gc can prune objects and worktree records that working agents still need.

    \b
    Examples:
      gitxact gc
      gitxact gc --aggressive --prune=now
      gitxact gc --force -- --force
    """
    from gitxact.gx import guard

    return guard.gc(app.workspace(timeout=timeout), list(gc_args), force=force)
