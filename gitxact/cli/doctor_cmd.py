"""``gitxact doctor``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app


@click.command()
@click.option("--fix", is_flag=True, help="Make the repairs it reports (safe to run again).")
@json_option
@pass_app
def doctor(app: AppContext, fix: bool, as_json: bool) -> int:
    """Cross-check gitxact's state with git and report (or --fix) every inconsistency.

    Exit 0 when everything is consistent (or was fixed), 1 when problems remain.

    \b
    Examples:
      gitxact doctor
      gitxact doctor --fix --json
    """
    from gitxact.health.doctor import run

    report = run(app.workspace(), fix=fix)
    if as_json:
        emit(report)
    elif not report.findings:
        click.echo("gitxact doctor: everything is consistent")
    else:
        for item in report.findings:
            mark = "fixed" if item.fixed else "found"
            click.echo(f"{mark}: [{item.check}] {item.problem} -> {item.repair}")
        if not fix:
            click.echo("run `gitxact doctor --fix` to make these repairs", err=True)
    return 0 if report.ok else 1
