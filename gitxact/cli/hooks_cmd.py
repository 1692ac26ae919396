"""``gitxact hooks install|uninstall`` and ``gitxact hook NAME`` (what the hooks run)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app
from gitxact.util.console import table

if TYPE_CHECKING:
    from gitxact.hooks.install import HooksResult


@click.group()
def hooks() -> None:
    """Install or remove gitxact's native git hooks.

    pre-commit, pre-auto-gc and reference-transaction go into the common hooks folder
    (or core.hooksPath), shared by every worktree; a hook already there is kept and run
    after gitxact's check.

    \b
    Examples:
      gitxact hooks install
      gitxact hooks uninstall --json
    """


def _show(result: HooksResult, as_json: bool) -> None:
    if as_json:
        emit(result)
        return
    click.echo(f"hooks folder: {result.hooks_dir}")
    rows = [[h.name, h.action, f"(previous hook kept as {h.chained})" if h.chained else ""] for h in result.hooks]
    click.echo(table(rows))


@hooks.command()
@json_option
@pass_app
def install(app: AppContext, as_json: bool) -> int:
    """Install gitxact's hooks, chaining existing ones (idempotent).

    \b
    Example:
      gitxact hooks install
    """
    from gitxact.hooks import install as hooks_lib

    _show(hooks_lib.install(app.workspace()), as_json)
    return 0


@hooks.command()
@json_option
@pass_app
def uninstall(app: AppContext, as_json: bool) -> int:
    """Remove gitxact's hooks and put back the hooks they chained.

    \b
    Example:
      gitxact hooks uninstall
    """
    from gitxact.hooks import install as hooks_lib

    _show(hooks_lib.uninstall(app.workspace()), as_json)
    return 0


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("name", type=click.Choice(["pre-commit", "pre-auto-gc", "reference-transaction"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def hook(app: AppContext, name: str, args: tuple[str, ...]) -> int:
    """Run gitxact's check for git hook NAME (exit 3 refuses).

    The installed hooks and the pre-commit framework hook `gitxact-guard` run this;
    reference-transaction reads git's "<old> <new> <ref>" lines from stdin.

    \b
    Examples:
      gitxact hook pre-commit
      echo "$old $new refs/heads/x" | gitxact hook reference-transaction prepared
    """
    from gitxact.hooks import policy

    where = app.path()
    if where is not None:  # `gitxact -C WORKTREE hook ...` checks as if run there, as git would
        try:
            os.chdir(where)
        except OSError as exc:
            raise click.UsageError(f"cannot change to {where}: {exc.strerror}") from exc
    return policy.main([name, *args])
