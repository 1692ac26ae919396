"""``gitxact gc [--force] [GIT-GC-ARGS...]``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import pass_app, timeout_option


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--force", is_flag=True, help="Run even while leases are active (git gc's own --force: after --).")
@timeout_option
@click.argument("gc_args", nargs=-1, type=click.UNPROCESSED, metavar="[GIT-GC-ARGS]...")
@pass_app
def gc(app: AppContext, force: bool, timeout: float | None, gc_args: tuple[str, ...]) -> int:
    """Run `git gc` under the exclusive repository lock; exit with git's code.

    Refused (exit 3, listing the leases) while any worktree lease is active, because
    gc can prune objects and worktree records that working agents still need. First
    drops the snapshots older than `gitxact.snapshotExpiry` (when set) that no live
    lease or transaction holds.

    \b
    Examples:
      gitxact gc
      gitxact gc --aggressive --prune=now
      gitxact gc --force -- --force
    """
    from gitxact.gx import guard
    from gitxact.snapshots.expiry import describe, expire_for_gc
    from gitxact.util import console

    ws = app.workspace(timeout=timeout)
    expired = expire_for_gc(ws, force=force)  # gitxact.snapshotExpiry; None when unset or gc is refused
    if expired is not None:
        console.info(describe(expired))  # stderr: stdout stays git's
    return guard.gc(ws, list(gc_args), force=force)
