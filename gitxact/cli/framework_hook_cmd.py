"""``gitxact framework-hook pre-commit``: what the pre-commit framework's ``gitxact-guard`` runs."""

from __future__ import annotations

import os

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import pass_app


@click.command(
    name="framework-hook", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("name", type=click.Choice(["pre-commit"]))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@pass_app
def framework_hook(app: AppContext, name: str, args: tuple[str, ...]) -> int:
    """Run gitxact's NAME check for the pre-commit framework, once per commit (exit 3 refuses).

    The same check as `gitxact hook NAME`, skipped when the framework's git hook runs
    it and gitxact's own hook (`gitxact hooks install`) has already checked this commit,
    so with both installed, in either order, the check runs exactly once. Run any
    other way (`pre-commit run`, CI) it always checks.

    \b
    Examples (.pre-commit-config.yaml):
      - repo: local
        hooks:
          - id: gitxact-guard
            name: gitxact guard
            entry: gitxact framework-hook pre-commit
            language: system
            pass_filenames: false
            always_run: true
    """
    from gitxact.hooks import framework, policy

    if framework.already_checked(name) is not None:
        return 0
    where = app.path()
    if where is not None:  # `gitxact -C WORKTREE framework-hook ...` checks as if run there, as git would
        try:
            os.chdir(where)
        except OSError as exc:
            raise click.UsageError(f"cannot change to {where}: {exc.strerror}") from exc
    return policy.main([name, *args])
