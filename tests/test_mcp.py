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
import select
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.proc import git, gitxact

pytest.importorskip("mcp")

from mcp import ClientSession, StdioServerParameters, stdio_client

from gitxact.mcp.catalog import TOOLS

CHECK = "test -f feature.txt"  # the "test": passes once the feature exists


@asynccontextmanager
async def session(repo: Path, agent: str, *args: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "gitxact", "mcp", "--agent", agent, *args],
        cwd=str(repo),
        env=dict(os.environ),
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
            assert (red["check"]["passed"], red["check"]["log"]) == (False, red["check_log"])
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
            status = await call(client, "status", all=True)
            assert (status["agent"], status["worktree"], status["lease"]) == ("agent-1", None, None)
            assert status["fleet"]["leases"] == []

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
            status = await call(alice, "status", all=True)
            assert {lease["agent"] for lease in status["fleet"]["leases"]} == {"alice", "bob"}
            assert status["worktree"] == first["path"]
            await call(alice, "release")
            await call(bob, "release")

    asyncio.run(scenario())


def test_an_agent_cannot_land_onto_another_agents_lease_through_mcp(repo: Path) -> None:
    """Issue 25: agent-1's server landing onto gitxact/agent-2 while agent-2 has a transaction open."""
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("hooks", "install", cwd=repo).returncode == 0

    async def scenario() -> None:
        async with session(repo, "agent-1") as one, session(repo, "agent-2") as two:
            mine, theirs = Path((await call(one, "lease"))["path"]), Path((await call(two, "lease"))["path"])
            (mine / "feature.txt").write_text("agent-1's\n")
            git("add", "feature.txt", cwd=mine)
            git("commit", "-q", "-m", "agent-1's", cwd=mine)
            await call(two, "tx_begin", name="work")
            start = git("rev-parse", "HEAD", cwd=theirs).strip()
            (theirs / "step.txt").write_text("agent-2's step\n")
            git("add", "step.txt", cwd=theirs)
            git("commit", "-q", "-m", "agent-2's step", cwd=theirs)
            (theirs / "draft.txt").write_text("agent-2's draft\n")
            tip, status = git("rev-parse", "HEAD", cwd=theirs), git("status", "--porcelain", cwd=theirs)

            message = await refused(one, "land", onto="gitxact/agent-2", check=CHECK)
            assert "[exit 3, reason leased_by_other]" in message
            assert "leased to 'agent-2'" in message
            assert git("rev-parse", "gitxact/agent-2", cwd=repo) == tip, "agent-2's branch did not move"
            assert git("status", "--porcelain", cwd=theirs) == status, "nor did its worktree change"
            assert not (theirs / "feature.txt").exists()

            await call(two, "tx_rollback")
            assert git("rev-parse", "HEAD", cwd=theirs).strip() == start
            assert not (theirs / "step.txt").exists()
            landed = await call(one, "land", onto="main", check=CHECK)
            assert (landed["state"], landed["target"]) == ("landed", "main")

    asyncio.run(scenario())


def test_bad_arguments_are_tool_errors_with_their_reason(repo: Path) -> None:
    """A NUL byte, a 1 MB name, JSON nested too deep: refused before anything runs, the server keeps serving."""
    assert gitxact("init", cwd=repo).returncode == 0
    deep, shallow = nested(100), nested(40)

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            await call(client, "lease")
            cases = [
                ("land", {"onto": "x" * 1_000_000}, "argument 'onto': String should have at most 4096 characters"),
                ("tracker_get", {"key": "x" * 1_000_000}, "argument 'key' is longer than 65536 bytes"),
                ("land", {"onto": "main\0"}, "argument 'onto' holds a NUL byte"),
                ("tracker_set", {"key": "k\0", "value": 1}, "argument 'key' holds a NUL byte"),
                ("tracker_set", {"key": "k", "value": {"a": "b\0"}}, "argument 'value' holds a NUL byte"),
                ("tracker_set", {"key": "k", "value": deep}, "argument 'value' is nested deeper than 64 levels"),
                ("tdd_red", {"check": "true", "paths": ["a\0b"]}, "argument 'paths' holds a NUL byte"),
                ("tracker_set", {"key": "k", "value": "x" * (1024 * 1024 + 1)}, "larger than 1048576 bytes"),
            ]
            for tool, arguments, expected in cases:
                message = await refused(client, tool, **arguments)
                assert expected in message, (tool, message)
                assert "[exit 2, reason invalid_argument]" in message
                assert "internal error" not in message
            # Deeper than the SDK's own parser goes, or larger than any tool call needs: answered
            # before the SDK sees it (which would otherwise drop it and leave the client waiting).
            for arguments, expected in (
                ({"key": "k", "value": nested(150)}, "nested deeper than 128 levels"),
                ({"key": "k", "value": "x" * (9 * 1024 * 1024)}, "larger than 8388608 bytes"),
            ):
                message = await refused(client, "tracker_set", **arguments)
                assert expected in message, message
                assert "[exit 2, reason invalid_argument]" in message
            assert (await call(client, "tracker_set", key="k", value=shallow))["value"] == shallow
            big = "x" * 1_000_000  # a 1 MB value is within the tracker's bound
            assert (await call(client, "tracker_set", key="big", value=big))["version"] == 1
            assert (await call(client, "tracker_get", key="k"))["result"][0]["version"] == 1

    asyncio.run(scenario())


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_message_nested_past_any_parser_is_answered_and_the_server_keeps_serving(repo: Path) -> None:
    """10,000 levels (the official client cannot even send it): raw JSON-RPC lines on the server's stdin."""
    assert gitxact("init", cwd=repo).returncode == 0
    deep = "[" * 10_000 + "]" * 10_000
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gitxact", "mcp", "--agent", "agent-1"],
        cwd=repo,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "result" in exchange(
            proc, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello})
        )
        send(proc, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        call_line = '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "tracker_set", '
        call_line += f'"arguments": {{"key": "k", "value": {deep}}}}}}}'
        tool_error = exchange(proc, call_line)
        assert tool_error["id"] == 2
        assert tool_error["result"]["isError"] is True
        text = tool_error["result"]["content"][0]["text"]
        assert "nested deeper than 128 levels [exit 2, reason invalid_argument]" in text
        assert tool_error["result"]["structuredContent"]["error"]["reason"] == "invalid_argument"
        invalid = exchange(proc, f'{{"jsonrpc": "2.0", "id": 3, "method": "ping", "params": {{"x": {deep}}}}}')
        assert (invalid["id"], invalid["error"]["code"]) == (3, -32600)
        later = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "tracker_get", "arguments": {}}}
        served = exchange(proc, json.dumps(later))
        assert served["id"] == 4
        assert served["result"]["isError"] is False, "the server kept serving"
        assert served["result"]["structuredContent"]["result"] == [], "nothing was stored"
    except BaseException:
        proc.kill()
        raise
    finally:
        _, err = proc.communicate(timeout=30)  # closes stdin: the server ends
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def exchange(proc: subprocess.Popen[str], line: str, timeout: float = 30) -> dict[str, Any]:
    """Send one request line; its reply, waited for at most *timeout* seconds."""
    send(proc, line)
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, f"no reply within {timeout}s to {line[:80]}"
    reply: dict[str, Any] = json.loads(proc.stdout.readline())
    return reply
