"""``gitxact conflicts``: see conflicts between agents coming, before anyone lands."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app


@click.command()
@click.option("--onto", metavar="TARGET", help="The branch agents land onto [the main worktree's branch].")
@json_option
@pass_app
def conflicts(app: AppContext, onto: str | None, as_json: bool) -> int:
    """Which live leases' branches would conflict with TARGET, and with each other.

    Each branch is merged with the target, and each pair of branches with each other,
    by `git merge-tree --write-tree` (git 2.38+): in the object database only, so no
    worktree, index or ref changes. Exit 0 either way: this reports, it refuses nothing.

    \b
    Examples:
      gitxact conflicts
      gitxact conflicts --onto main --json | jq '.pairs[] | {agents, paths}'
    """
    doc = app.workspace().conflicts(onto)
    if as_json:
        emit(doc)
        return 0
    click.echo(f"against {doc.target} ({doc.target_tip[:12]}):")
    if not doc.against_target:
        click.echo("  no live leases")
    for check in doc.against_target:
        verdict = "clean" if check.clean else "conflicts in " + ", ".join(check.paths)
        click.echo(f"  {check.agent}  {check.branch}  {verdict}")
    click.echo(f"between leases ({doc.pairs_checked} pair(s) checked):")
    if not doc.pairs:
        click.echo("  no conflicts")
    for pair in doc.pairs:
        click.echo(f"  {pair.agents[0]} x {pair.agents[1]}  conflict in " + ", ".join(pair.paths))
    return 0
