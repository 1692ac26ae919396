"""``gitxact demo``."""

from __future__ import annotations

import click

from gitxact.cli.context import json_option, show


@click.command()
@click.option("--agents", type=click.IntRange(2, 16), default=4, show_default=True, help="How many agents run at once.")
@click.option(
    "--commits",
    type=click.IntRange(1, 100),
    default=5,
    show_default=True,
    help="Commits per agent into the shared worktree (each agent also makes 2 TDD commits).",
)
@click.option("--bumps", type=click.IntRange(1, 1000), default=25, show_default=True, help="Counter updates per agent.")
@click.option(
    "--raw", is_flag=True, help="Run the same agents with raw git and a JSON file: see what gitxact prevents."
)
@click.option("--keep", is_flag=True, help="Keep the temporary repository and print where it is.")
@json_option
def demo(agents: int, commits: int, bumps: int, raw: bool, keep: bool, as_json: bool) -> int:
    """Run several agents on one temporary repository at once, and show that nothing is lost.

    Each agent leases a worktree, runs a TDD sequence (one agent's green check fails and
    is rolled back), commits into the shared worktree through gx and bumps a shared
    counter; meanwhile gc is refused, and one agent is SIGKILLed and `gitxact recover`
    cleans up. Needs no repository of your own. Exit 0 when nothing was lost (with
    --raw, exit 0 too: the failures are the point).

    \b
    Examples:
      gitxact demo
      gitxact demo --raw
      gitxact demo --agents 8 --json
    """
    from gitxact.demo.report import render
    from gitxact.demo.supervisor import run

    summary = run(
        mode="raw" if raw else "gitxact", agents=agents, commits=commits, bumps=bumps, keep=keep, progress=not as_json
    )
    show(summary, as_json, lambda: render(summary))
    return 0 if raw or summary.ok else 1
