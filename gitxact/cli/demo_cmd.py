"""``gitxact demo``."""

from __future__ import annotations

import click

from gitxact.cli.context import emit, json_option


@click.command()
@click.option("--agents", type=click.IntRange(1, 32), default=4, show_default=True, help="How many agents run at once.")
@click.option("--rounds", type=click.IntRange(1, 1000), default=25, show_default=True, help="Updates per agent.")
@click.option("--keep", is_flag=True, help="Keep the temporary repository and print where it is.")
@json_option
def demo(agents: int, rounds: int, keep: bool, as_json: bool) -> int:
    """Run several agents on one temporary repository and show that nothing is lost.

    Needs no repository of your own: everything happens in a temporary folder.

    \b
    Examples:
      gitxact demo
      gitxact demo --agents 8 --json
    """
    from gitxact.demo import render, run

    summary = run(agents=agents, rounds=rounds, keep=keep, progress=not as_json)
    if as_json:
        emit(summary)
    else:
        click.echo(render(summary))
        if keep:
            click.echo(f"repository kept at {summary.repository}")
    return 0 if summary.lost == 0 else 1
