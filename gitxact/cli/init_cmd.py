"""``gitxact init``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app


@click.command()
@click.option(
    "--backend",
    metavar="BACKEND",
    help="Where agents coordinate: files (this host, the default), or postgresql://USER@HOST/DB "
    "(every host; `postgresql` alone takes libpq's PG* variables). Saved in git config gitxact.backend.",
)
@json_option
@pass_app
def init(app: AppContext, backend: str | None, as_json: bool) -> int:
    """Create gitxact's state folder in the repository's common dir (idempotent).

    The folder is <git-common-dir>/gitxact: never tracked, shared by every worktree.
    With --backend postgresql://..., the tracker and named locks live in that database
    (its schema created or migrated now); exit 75 if it cannot be reached, and nothing
    is changed then.

    \b
    Examples:
      gitxact init
      gitxact init --backend postgresql://gitxact@db.internal:5432/agents
    """
    ws = app.workspace()
    setup = None
    if backend is not None:
        from gitxact.backends.admin import select_backend

        setup = select_backend(ws, backend)
    result = ws.init()
    if setup is not None:
        result.settings["gitxact.backend"] = setup.backend
        result.settings["namespace"] = setup.namespace
        result.settings["schema_version"] = setup.schema_version
    if as_json:
        emit(result)
        return 0
    verb = "initialized" if result.created else "already initialized"
    click.echo(f"gitxact {verb} in {result.state_dir}")
    if setup is not None and setup.namespace is not None:
        migrated = f", migrated to {setup.applied[-1]}" if setup.applied else ""
        click.echo(
            f"backend: {setup.backend} (namespace {setup.namespace}, schema version {setup.schema_version}{migrated})"
        )
    elif setup is not None:
        click.echo("backend: files (this host)")
    return 0
