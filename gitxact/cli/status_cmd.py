"""``gitxact status``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import (
    conflicts_option,
    conflicts_target,
    dirty_option,
    json_option,
    pass_app,
    show,
    sizes_option,
)
from gitxact.cli.render import render_status


@click.command()
@dirty_option
@sizes_option
@conflicts_option
@json_option
@pass_app
def status(
    app: AppContext, dirty: bool | None, sizes: bool, conflicts: bool, conflicts_onto: str | None, as_json: bool
) -> int:
    """Show locks (holders and waiters), state files, leases, transactions and lock wait times.

    Holders that died are recognised and cleared, never shown. Whether each leased
    worktree is dirty is looked at with --dirty (always with --json). Each lease's
    size on disk is the one recorded at acquire, with its age; --sizes measures again.

    \b
    Examples:
      gitxact status
      gitxact status --dirty
      gitxact status --conflicts
      gitxact status --json | jq '.locks'
    """
    from gitxact.health.status import collect

    checked = as_json if dirty is None else dirty
    onto = conflicts_target(app, conflicts, conflicts_onto)
    doc = collect(app.workspace(), dirty=checked, conflicts_onto=onto, sizes=sizes)
    show(doc, as_json, lambda: render_status(doc, dirty=checked))
    return 0
