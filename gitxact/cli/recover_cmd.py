"""``gitxact recover``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app, timeout_option


@click.command()
@timeout_option
@json_option
@pass_app
def recover(app: AppContext, timeout: float | None, as_json: bool) -> int:
    """After a crash: finish or roll back interrupted transactions, clear dead git locks.

    Runs its steps under the exclusive repository lock: git-locks (lock files whose
    owner is provably dead), journals (every interrupted transaction step, finished or
    undone by a fixed decision table), expired-savepoints. Exit 1 if a problem remains.

    \b
    Examples:
      gitxact recover
      gitxact recover --json | jq '.steps[] | .actions'
    """
    doc = app.workspace(timeout=timeout).recover()
    if as_json:
        emit(doc)
    else:
        for step in doc.steps:
            for action in step.actions:
                click.echo(f"{step.name}: {action}")
        if not any(step.actions or step.problems for step in doc.steps):
            click.echo("nothing to recover")
    for step in doc.steps:  # problems also go to stderr in --json mode: the exit code is 1
        for problem in step.problems:
            click.echo(f"gitxact: recover: {step.name}: {problem}", err=True)
    return 0 if doc.ok else 1
