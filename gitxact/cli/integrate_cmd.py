"""``gitxact integrate claude-code``: Claude Code's worktrees become gitxact leases."""

from __future__ import annotations

from pathlib import Path

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, pass_app, show


@click.group()
def integrate() -> None:
    """Wire gitxact into other tools.

    \b
    Examples:
      gitxact integrate claude-code
      gitxact integrate claude-code --local --remove
    """


@integrate.command(name="claude-code")
@click.option("--local", is_flag=True, help="Write .claude/settings.local.json (yours only) instead of settings.json.")
@click.option("--settings", "settings_path", metavar="FILE", help="Write this settings file instead.")
@click.option(
    "--gitxact",
    "executable",
    default="gitxact",
    show_default=True,
    metavar="PATH",
    help="How Claude Code runs gitxact (an absolute path if it is not on Claude Code's PATH).",
)
@click.option(
    "--mcp",
    "with_mcp",
    is_flag=True,
    help="Also register `gitxact mcp` in the project's .mcp.json (Claude Code's project scope).",
)
@click.option(
    "--agent",
    default="claude",
    show_default=True,
    metavar="NAME",
    help="With --mcp: the agent when a session sets no GITXACT_AGENT (the entry says ${GITXACT_AGENT:-NAME}).",
)
@click.option("--remove", is_flag=True, help="Take gitxact's hooks (and with --mcp its MCP server) out again.")
@json_option
@pass_app
def claude_code(
    app: AppContext,
    local: bool,
    settings_path: str | None,
    executable: str,
    with_mcp: bool,
    agent: str,
    remove: bool,
    as_json: bool,
) -> int:
    """Make Claude Code lease its worktrees from gitxact (WorktreeCreate/WorktreeRemove hooks).

    Writes the two command hooks into the project's .claude/settings.json (idempotent;
    every other setting and hook is kept). Then `claude --worktree NAME` and subagents
    with isolation: worktree get a gitxact-leased worktree and branch, owned by the
    Claude Code process, with .worktreeinclude files copied in; at the end the lease is
    released and uncommitted work kept in a snapshot ref. Refused (exit 3) if another
    WorktreeCreate/WorktreeRemove hook is configured there.

    With --mcp, the `gitxact` MCP server goes into the project's .mcp.json beside them
    (every other server kept; refused, exit 3, if a `gitxact` entry there runs something
    else). Each session's agent is ${GITXACT_AGENT:-NAME}: set GITXACT_AGENT per session,
    since two sessions of one agent share one lease.

    \b
    Examples:
      gitxact integrate claude-code
      gitxact integrate claude-code --mcp
      gitxact integrate claude-code --local --gitxact "$(command -v gitxact)"
    """
    from gitxact.integrations.claude_mcp import register
    from gitxact.integrations.claude_settings import integrate as write_settings
    from gitxact.util.names import validate_agent

    validate_agent(agent)
    top = app.workspace().layout.require_worktree() if settings_path is None or with_mcp else Path()
    target = (
        Path(settings_path)
        if settings_path is not None
        else top / ".claude" / ("settings.local.json" if local else "settings.json")
    )
    mcp_config = top / ".mcp.json"
    if with_mcp:  # looked at first: a refused .mcp.json leaves the settings as they were too
        register(mcp_config, gitxact=executable, agent=agent, remove=remove, dry_run=True)
    doc = write_settings(target, gitxact=executable, remove=remove)
    if with_mcp:
        doc.mcp = register(mcp_config, gitxact=executable, agent=agent, remove=remove)

    def text() -> str:
        lines = [f"{doc.action}: {doc.settings}"]
        lines += [f"  {event}: {command}" for event, command in doc.hooks.items()]
        if doc.mcp is not None:
            lines.append(f"{doc.mcp.action}: {doc.mcp.config}")
            if doc.mcp.server is not None:
                lines.append(f"  mcpServers.gitxact: {' '.join([doc.mcp.server['command'], *doc.mcp.server['args']])}")
        return "\n".join(lines)

    show(doc, as_json, text)
    return 0
