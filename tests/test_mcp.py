"""``gitxact mcp`` (issue 18): a real MCP client session, through the SDK's stdio client.

The client starts ``gitxact mcp`` as a process, as an agent runtime would, and calls its
tools: lease, a TDD sequence whose green fails (rolled back, a tool error) then passes,
landing, the tracker, release. Two servers for two agents at once keep their
boundaries: neither can act on the other's lease.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.proc import git, gitxact

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

from gitxact.mcp.server import TOOLS

CHECK = "test -f feature.txt"  # the "test": passes once the feature exists


@asynccontextmanager
async def session(repo: Path, agent: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "gitxact", "mcp", "--agent", agent], cwd=str(repo), env=dict(os.environ)
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        yield client


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must succeed; its structured result."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, result.content)
    assert result.structured_content is not None
    return result.structured_content


async def refused(client: ClientSession, tool: str, **arguments: Any) -> str:
    """A tool call that must come back as a tool error; its message."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, result.structured_content)
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert "Traceback" not in text
    return text


def test_an_agent_leases_runs_tdd_lands_and_releases_through_mcp(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    base = git("rev-parse", "main", cwd=repo).strip()

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == set(TOOLS)
            lease = await call(client, "lease")
            worktree = Path(lease["path"])
            assert (lease["agent"], lease["branch"], lease["existing"]) == ("agent-1", "gitxact/agent-1", False)
            assert lease["token"]
            assert worktree.is_dir()

            (worktree / "spec.txt").write_text("feature.txt must exist\n")
            red = await call(client, "tdd_red", check=CHECK, paths=["spec.txt"])
            assert red["step"] == "red"
            (worktree / "wrong.txt").write_text("not the feature\n")
            message = await refused(client, "tdd_green", check=CHECK, paths=["wrong.txt"])
            assert "rolled back" in message
            assert git("rev-parse", "HEAD", cwd=worktree).strip() == base, "the red commit is undone"
            assert not (worktree / "wrong.txt").exists(), "the work of the sequence is undone (kept in a ref)"
            assert (worktree / "spec.txt").exists(), "written before the sequence began: uncommitted again"

            await call(client, "tdd_red", check=CHECK, paths=["spec.txt"])
            (worktree / "feature.txt").write_text("the feature\n")
            green = await call(client, "tdd_green", check=CHECK, paths=["feature.txt"])
            assert len(green["commits"]) == 2
            await call(client, "tdd_done")

            landed = await call(client, "land", onto="main", check=CHECK)
            assert (landed["state"], landed["target"]) == ("landed", "main")
            assert git("show", "main:feature.txt", cwd=repo) == "the feature\n"

            assert (await call(client, "tracker_incr", key="tasks.done"))["value"] == 1
            entry = await call(client, "tracker_compare_and_set", key="owner", value="agent-1", expect_version=0)
            assert entry["version"] == 1
            conflict = await refused(client, "tracker_compare_and_set", key="owner", value="x", expect_version=0)
            assert "version" in conflict

            released = await call(client, "release")
            assert released["agent"] == "agent-1"
            assert not worktree.exists()
            status = await call(client, "status")
            assert (status["agent"], status["worktree"], status["leases"]) == ("agent-1", None, [])

    asyncio.run(scenario())
    counts = json.loads(gitxact("stats", "--json", cwd=repo).stdout)["agents"]["agent-1"]
    assert (counts["transactions"], counts["rollbacks"], counts["lands"]) == (2, 1, 1), "the record saw it all"


def test_two_servers_for_two_agents_keep_their_boundaries(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0

    async def scenario() -> None:
        async with session(repo, "alice") as alice, session(repo, "bob") as bob:
            first = await call(alice, "lease")
            message = await refused(bob, "tx_begin")
            assert "'bob' holds no lease" in message
            message = await refused(bob, "release", token=first["token"])
            assert "'bob' holds no lease" in message
            second = await call(bob, "lease")
            assert second["path"] != first["path"]
            message = await refused(bob, "renew", token=first["token"])
            assert "wrong token" in message
            await call(alice, "tx_begin", name="a-work")
            bob_tx = await call(bob, "tx_begin", name="b-work")
            assert bob_tx["savepoints"] == ["start"]
            counts = await asyncio.gather(
                *[call(client, "tracker_incr", key="n") for client in (alice, bob) for _ in range(5)]
            )
            assert sorted(c["value"] for c in counts) == list(range(1, 11))
            await call(alice, "tx_commit")
            await call(bob, "tx_rollback")
            status = await call(alice, "status")
            assert {lease["agent"] for lease in status["leases"]} == {"alice", "bob"}
            assert status["worktree"] == first["path"]
            await call(alice, "release")
            await call(bob, "release")

    asyncio.run(scenario())
