"""``gitxact mcp``: serve gitxact's operations to one agent as MCP tools, over stdio."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import pass_app
from gitxact.errors import UsageError
from gitxact.util.identity import OWNER_PID_ENV
from gitxact.util.startup import AGENT_ENV


@click.command()
@click.option("--agent", envvar=AGENT_ENV, metavar="NAME", help=f"The agent this server acts for [{AGENT_ENV}].")
@click.option(
    "--owner-pid",
    envvar=OWNER_PID_ENV,
    type=click.IntRange(min=1),
    metavar="PID",
    help=f"The process the leases live with [{OWNER_PID_ENV}]; default: this server.",
)
@pass_app
def mcp(app: AppContext, agent: str | None, owner_pid: int | None) -> int:
    """Run an MCP server over stdio for one agent (start one per agent).

    Tools: lease, release, renew; commit, diff, log, sync, sync_continue, sync_abort,
    conflicts; land (dry_run); tx_begin, tx_savepoint, tx_rollback, tx_commit; tdd_red,
    tdd_green, tdd_refactor, tdd_done; snapshots_list, snapshots_restore, recover;
    tracker_get, tracker_set, tracker_incr, tracker_compare_and_set; status. Every
    result is structured; refusals are tool errors with error.reason. Needs the [mcp]
    extra (the official MCP Python SDK).

    \b
    Examples:
      gitxact -C /path/to/repo mcp --agent agent-1
      claude mcp add gitxact-agent-1 -- gitxact -C /path/to/repo mcp --agent agent-1

    The leases the server takes are owned by the server process (it ends with the
    agent's session, and so does the lease's liveness), or by --owner-pid when the
    runtime names its own process.
    """
    if not agent:
        raise UsageError("gitxact mcp needs the agent it acts for", hint="pass --agent NAME or set GITXACT_AGENT")
    try:
        from gitxact.mcp.server import serve
    except ImportError as missing:
        if missing.name is None or not missing.name.startswith("mcp"):
            raise
        raise UsageError(
            "gitxact mcp needs the MCP Python SDK, which is not installed", hint="pip install 'gitxact[mcp]'"
        ) from None
    from gitxact.util.names import validate_agent

    serve(app.path(), validate_agent(agent), owner_pid=owner_pid)
    return 0
