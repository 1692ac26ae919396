"""``gitxact trust [--revoke]``: let this clone run a committed ``.gitxact.toml``'s commands."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, pass_app, show
from gitxact.cli.render import render_trust


@click.command()
@click.option("--base", metavar="REF", help="The commit whose file to trust (default: as acquire, the main checkout).")
@click.option("--revoke", is_flag=True, help="Take the trust back: acquires refuse this content again.")
@json_option
@pass_app
def trust(app: AppContext, base: str | None, revoke: bool, as_json: bool) -> int:
    """Show the setup and teardown commands of the committed .gitxact.toml and trust them.

    Acquires run a .gitxact.toml's commands only once this clone trusts that exact
    content (its SHA-256, recorded in gitxact's state); an untrusted or changed file
    makes `worktree acquire` refuse (exit 3). The file is read from the commit a lease
    starts at (default: what the main worktree has checked out), never from the files
    in the main worktree. A file with no commands (only ports) needs no trust.

    \b
    Examples:
      gitxact trust
      gitxact trust --base feature-x
      gitxact trust --revoke
    """
    from gitxact.worktrees.setup import trust_for_acquire

    doc = trust_for_acquire(app.workspace(), base, revoke=revoke)
    show(doc, as_json, lambda: render_trust(doc))
    return 0
