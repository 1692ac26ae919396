"""``gitxact conflicts``: see conflicts between agents coming, before anyone lands."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app


@click.command()
@click.option("--onto", metavar="TARGET", help="The branch agents land onto [the main worktree's branch].")
@click.option("--exit-code", is_flag=True, help="Exit 1 when any conflict is found (as git diff --exit-code).")
@json_option
@pass_app
def conflicts(app: AppContext, onto: str | None, exit_code: bool, as_json: bool) -> int:
    """Which live leases' branches would conflict with TARGET, and with each other.

    Each branch is merged with the target, and each pair of branches with each other,
    by `git merge-tree --write-tree` (git 2.38+): in the object database only, so no
    worktree, index or ref changes. A branch already integrated into TARGET (landed,
    merged...) says so and is in no pair. Exit 0 either way (it reports, it refuses
    nothing), unless --exit-code: then 1 when any conflict is found.

    \b
    Examples:
      gitxact conflicts
      gitxact conflicts --onto main --json | jq '.pairs[] | {agents, paths}'
    """
    doc = app.workspace().conflicts(onto)
    failed = 1 if exit_code and not doc.clean else 0
    if as_json:
        emit(doc)
        return failed
    click.echo(f"against {doc.target} ({doc.target_tip[:12]}):")
    if not doc.against_target:
        click.echo("  no live leases")
    for check in doc.against_target:
        verdict = (
            check.integrated
            if check.integrated
            else "clean"
            if check.clean
            else "conflicts in " + ", ".join(check.paths)
        )
        click.echo(f"  {check.agent}  {check.branch}  {verdict}")
    click.echo(f"between leases ({doc.pairs_checked} pair(s) checked):")
    if not doc.pairs:
        click.echo("  no conflicts")
    for pair in doc.pairs:
        click.echo(f"  {pair.agents[0]} x {pair.agents[1]}  conflict in " + ", ".join(pair.paths))
    return failed
