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
@click.option("--remove", is_flag=True, help="Take gitxact's hooks out again.")
@json_option
@pass_app
def claude_code(
    app: AppContext, local: bool, settings_path: str | None, executable: str, remove: bool, as_json: bool
) -> int:
    """Make Claude Code lease its worktrees from gitxact (WorktreeCreate/WorktreeRemove hooks).

    Writes the two command hooks into the project's .claude/settings.json (idempotent;
    every other setting and hook is kept). Then `claude --worktree NAME` and subagents
    with isolation: worktree get a gitxact-leased worktree and branch, owned by the
    Claude Code process, with .worktreeinclude files copied in; at the end the lease is
    released and uncommitted work kept in a snapshot ref. Refused (exit 3) if another
    WorktreeCreate/WorktreeRemove hook is configured there.

    \b
    Examples:
      gitxact integrate claude-code
      gitxact integrate claude-code --local --gitxact "$(command -v gitxact)"
    """
    from gitxact.integrations.claude_settings import integrate as write_settings

    if settings_path is not None:
        target = Path(settings_path)
    else:
        top = app.workspace().layout.require_worktree()
        target = top / ".claude" / ("settings.local.json" if local else "settings.json")
    doc = write_settings(target, gitxact=executable, remove=remove)

    def text() -> str:
        lines = [f"{doc.action}: {doc.settings}"]
        lines += [f"  {event}: {command}" for event, command in doc.hooks.items()]
        return "\n".join(lines)

    show(doc, as_json, text)
    return 0
