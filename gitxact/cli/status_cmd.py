"""``gitxact status``."""

from __future__ import annotations

import click

from gitxact.cli.context import AppContext, emit, json_option, pass_app
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
    from gitxact.status import collect

    doc = collect(app.workspace())
    if as_json:
        emit(doc)
    else:
        click.echo(render_status(doc))
    return 0
