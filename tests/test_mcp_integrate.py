"""``gitxact integrate claude-code --mcp``: the server in the project's ``.mcp.json``, beside the hooks."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path

import pytest
from support.proc import assert_clean_error, gitxact

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

#: The installed ``gitxact`` script beside this interpreter: what Claude Code would run.
GITXACT_BIN = str(Path(sys.executable).parent / "gitxact")


def expand(text: str, env: dict[str, str]) -> str:
    """``${VAR:-default}`` as Claude Code expands it in ``.mcp.json``'s args."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), text)


def test_integrate_mcp_registers_the_server_beside_the_hooks(repo: Path) -> None:
    config = repo / ".mcp.json"
    config.write_text(json.dumps({"mcpServers": {"other": {"command": "other-server"}}, "keep": 1}))
    proc = gitxact("integrate", "claude-code", "--mcp", "--gitxact", GITXACT_BIN, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["action"], doc["mcp"]["action"]) == ("installed", "installed")
    data = json.loads(config.read_text())
    assert data["keep"] == 1
    assert data["mcpServers"]["other"] == {"command": "other-server"}
    entry = data["mcpServers"]["gitxact"]
    assert entry == {"command": GITXACT_BIN, "args": ["mcp", "--agent", "${GITXACT_AGENT:-claude}"]}
    settings = json.loads((repo / ".claude" / "settings.json").read_text())
    assert set(settings["hooks"]) == {"WorktreeCreate", "WorktreeRemove"}

    again = gitxact("integrate", "claude-code", "--mcp", "--gitxact", GITXACT_BIN, "--json", cwd=repo)
    assert json.loads(again.stdout)["mcp"]["action"] == "unchanged"

    # The entry runs as Claude Code would start it: the official client, the args expanded.
    async def scenario() -> str:
        env = {**os.environ, "GITXACT_AGENT": "agent-7"}
        args = [expand(arg, env) for arg in entry["args"]]
        params = StdioServerParameters(command=entry["command"], args=args, cwd=str(repo), env=env)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
            await client.initialize()
            result = await client.call_tool("status", {})
            assert not result.is_error, result.content
            assert result.structured_content is not None
            agent: str = result.structured_content["agent"]
            return agent

    assert gitxact("init", cwd=repo).returncode == 0
    assert asyncio.run(scenario()) == "agent-7"

    removed = json.loads(gitxact("integrate", "claude-code", "--mcp", "--remove", "--json", cwd=repo).stdout)
    assert removed["mcp"]["action"] == "removed"
    assert json.loads(config.read_text()) == {"mcpServers": {"other": {"command": "other-server"}}, "keep": 1}


def test_integrate_mcp_refuses_someone_elses_gitxact_entry_and_changes_nothing(repo: Path) -> None:
    config = repo / ".mcp.json"
    foreign = json.dumps({"mcpServers": {"gitxact": {"command": "npx", "args": ["some-other-gitxact"]}}})
    config.write_text(foreign)
    proc = gitxact("integrate", "claude-code", "--mcp", cwd=repo)
    assert_clean_error(proc, 3)
    assert "not gitxact's" in proc.stderr
    assert config.read_text() == foreign
    assert not (repo / ".claude" / "settings.json").exists(), "the hooks were not written either"
    assert_clean_error(gitxact("integrate", "claude-code", "--mcp", "--agent", "-bad", cwd=repo), 2)
    config.write_text("{not json")
    assert_clean_error(gitxact("integrate", "claude-code", "--mcp", cwd=repo), 2)
    assert config.read_text() == "{not json"
