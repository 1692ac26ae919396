"""``gitxact status``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, pass_app, show
from gitxact.cli.render import render_status


@click.command()
@json_option
@pass_app
def status(app: AppContext, as_json: bool) -> int:
    """Show locks (holders and waiters), state files and lock wait times.

    Holders that died are recognised and cleared, never shown.

    \b
    Examples:
      gitxact status
      gitxact status --json | jq '.locks'
    """
    from gitxact.health.status import collect

    doc = collect(app.workspace())
    show(doc, as_json, lambda: render_status(doc))
    return 0
