"""``gitxact init``."""

from __future__ import annotations

import click

from gitxact.cli.context import AppContext, emit, json_option, pass_app


@click.command()
@json_option
@pass_app
def init(app: AppContext, as_json: bool) -> int:
    """Create gitxact's state folder in the repository's common dir (idempotent).

    The folder is <git-common-dir>/gitxact: never tracked, shared by every worktree.

    \b
    Example:
      gitxact init
    """
    result = app.workspace().init()
    if as_json:
        emit(result)
    else:
        verb = "initialized" if result.created else "already initialized"
        click.echo(f"gitxact {verb} in {result.state_dir}")
    return 0
