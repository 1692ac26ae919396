"""Registering ``gitxact mcp`` in Claude Code's project-scope ``.mcp.json``.

Claude Code reads ``{"mcpServers": {NAME: {"command": ..., "args": [...]}}}`` from the
project's ``.mcp.json`` (a file meant to be committed, shared by everyone), and expands
``${VAR:-default}`` in ``args``. So the agent is not written into the file: it is
``${GITXACT_AGENT:-<default>}``, each session naming its own agent by that variable,
since two sessions of one agent would share one lease. The file is the user's: every
other server and key is kept; an entry called ``gitxact`` that does not run
``gitxact mcp`` is refused rather than replaced. Writing it again changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitxact.errors import RefusedError, UsageError
from gitxact.integrations.claude_settings import Action, McpRegistration, read_json_object, write_json_atomically

SERVER_NAME = "gitxact"


def server_entry(gitxact: str, agent: str) -> dict[str, Any]:
    return {"command": gitxact, "args": ["mcp", "--agent", f"${{GITXACT_AGENT:-{agent}}}"]}


def is_ours(entry: Any) -> bool:
    """A ``gitxact mcp`` entry, whatever path to gitxact it names."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    args = entry.get("args")
    return Path(entry["command"]).name == "gitxact" and isinstance(args, list) and args[:1] == ["mcp"]


def register(
    config: Path, *, gitxact: str = "gitxact", agent: str = "claude", remove: bool = False, dry_run: bool = False
) -> McpRegistration:
    """Add (or with *remove*, take out) the ``gitxact`` server; write only if something changed
    (never with *dry_run*: the refusals only)."""
    existed = config.exists()
    data = read_json_object(config)
    before = json.dumps(data)
    servers = data.get("mcpServers", {})
    if not isinstance(servers, dict):
        raise UsageError(f'{config}: "mcpServers" is not an object', hint="fix the file by hand first")
    current = servers.get(SERVER_NAME)
    if current is not None and not is_ours(current):
        raise RefusedError(
            f"{config} already has an MCP server called {SERVER_NAME!r} that is not gitxact's: {json.dumps(current)}",
            hint="rename or remove that entry, then run this again",
        )
    wanted = None if remove else server_entry(gitxact, agent)
    if wanted is None:
        servers.pop(SERVER_NAME, None)
    else:
        servers[SERVER_NAME] = wanted
    if servers:
        data["mcpServers"] = servers
    else:
        data.pop("mcpServers", None)
    changed = json.dumps(data) != before
    if remove:
        action: Action = "removed" if current is not None else "absent"
    else:
        action = "unchanged" if not changed else ("updated" if current is not None else "installed")
    if changed and (existed or data) and not dry_run:
        write_json_atomically(config, data)
    return McpRegistration(config=str(config), action=action, server=wanted)
