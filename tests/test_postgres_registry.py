"""The agent registry on PostgreSQL (issue 17): two hosts never hold one agent name or branch.

Hosts are played by ``GITXACT_TEST_HOST`` (the test-only host identity) in one process,
and by separate processes for the race.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.proc import run_parallel

from gitxact import RefusedError, Workspace
from gitxact.backends.choice import choose
from gitxact.backends.pg_registry import AgentRegistry, ClaimRef, Owner


def _registry(repo: Path) -> AgentRegistry:
    ws = Workspace(repo)
    return AgentRegistry.open(ws, choose(ws))


def test_two_hosts_never_hold_one_agent_or_branch(pg_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry(pg_repo)
    try:
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-a")
        mine = registry.claim("agent-1", "gitxact/agent-1", ttl=3600, path="/a/agent-1", token="t-a")
        assert (mine.owner.host, mine.owner.pid, mine.expired) == ("host-a", os.getpid(), False)
        again = registry.claim("agent-1", "gitxact/agent-1", ttl=3600, token="t-a")  # again: renewed
        assert again.owner.host == "host-a"
        ref_a = again.ref()
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-b")
        with pytest.raises(RefusedError, match=r"agent name taken.*on host-a"):
            registry.claim("agent-1", "gitxact/other", ttl=3600)
        with pytest.raises(RefusedError, match=r"branch 'gitxact/agent-1' is claimed.*agent agent-1.*on host-a"):
            registry.claim("agent-2", "gitxact/agent-1", ttl=3600)
        with pytest.raises(RefusedError):
            registry.renew("agent-1", ClaimRef(Owner.of(), "t-a"))  # not host-b's, whatever the token
        assert registry.release("agent-1", ClaimRef(Owner.of(), "t-a")) is False
        registry.claim("agent-2", "gitxact/agent-2", ttl=3600)
        fleet = {(c.agent, c.branch, c.owner.host) for c in registry.list()}
        assert fleet == {("agent-1", "gitxact/agent-1", "host-a"), ("agent-2", "gitxact/agent-2", "host-b")}
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-a")
        with pytest.raises(RefusedError):
            registry.renew("agent-1", ClaimRef(Owner.of(), "another lease's token"))
        assert registry.release("agent-1", ClaimRef(Owner.of(), "another lease's token")) is False
        assert registry.renew("agent-1", ref_a).agent == "agent-1"
        assert registry.release("agent-1", ref_a) is True
        assert [c.agent for c in registry.list()] == ["agent-2"]
    finally:
        registry.close()


def test_expired_and_dead_claims_are_taken_over(pg_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry(pg_repo)
    try:
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-a")
        registry.claim("agent-3", "gitxact/agent-3", ttl=0)  # no heartbeat will come: expired at once
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
        )
        dead = Owner(pid=int(gone.stdout), host="host-b", start=None)
        registry.claim("agent-4", "gitxact/agent-4", ttl=3600, owner=dead)
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-b")
        # Expired on another host: taken over, agent and branch alike.
        assert registry.claim("agent-3", "gitxact/agent-3", ttl=3600).owner.host == "host-b"
        assert registry.claim("agent-5", "gitxact/agent-4", ttl=3600, owner=Owner.of()) is not None
        # Its owner provably died on this (test) host: its claim ended, the branch freed.
        assert {c.agent for c in registry.list()} == {"agent-3", "agent-5"}
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-c")
        registry.claim("agent-6", "gitxact/agent-6", ttl=3600, owner=Owner(pid=1, host="host-d", start=None))
        with pytest.raises(RefusedError):  # a live-looking owner on another host: only its TTL ends it
            registry.claim("agent-6", "gitxact/agent-6", ttl=3600)
    finally:
        registry.close()


def test_a_stale_owner_changes_nothing_of_the_new_owners_claim(pg_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 25: host A's claim expired (A cut off), host B took the agent over. A's release,
    renew, re-claim and a reap holding A's old reading all leave B's claim as it is."""
    registry = _registry(pg_repo)
    try:
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-a")
        stale = registry.claim("agent-7", "gitxact/agent-7", ttl=0, token="lease-a")  # expired at once
        ref_a = stale.ref()
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-b")
        taken = registry.claim("agent-7", "gitxact/agent-7", ttl=3600, token="lease-b")
        assert taken.owner.host == "host-b"
        monkeypatch.setenv("GITXACT_TEST_HOST", "host-a")
        assert registry.release("agent-7", ref_a) is False
        with pytest.raises(RefusedError, match=r"no longer this lease's: now agent agent-7 .* on host-b"):
            registry.renew("agent-7", ref_a)
        with pytest.raises(RefusedError, match=r"agent name taken.*on host-b"):
            registry.claim("agent-7", "gitxact/agent-7", ttl=3600, token="lease-a2")
        assert registry.end(stale) is False  # a reap that read A's expired claim, ending it now
        [claim] = registry.list()
        assert (claim.owner.host, claim.token, claim.heartbeat) == ("host-b", "lease-b", taken.heartbeat)
    finally:
        registry.close()


_CLAIMER = textwrap.dedent(
    """
    import sys
    from gitxact import RefusedError, Workspace
    from gitxact.backends.choice import choose
    from gitxact.backends.pg_registry import AgentRegistry
    ws = Workspace(sys.argv[1])
    registry = AgentRegistry.open(ws, choose(ws))
    try:
        registry.claim("race", "gitxact/race", ttl=3600)
    except RefusedError:
        sys.exit(3)
    """
)


def test_eight_hosts_racing_for_one_agent_one_wins(pg_repo: Path) -> None:
    commands = [["env", f"GITXACT_TEST_HOST=host-{i}", sys.executable, "-c", _CLAIMER, str(pg_repo)] for i in range(8)]
    codes = sorted(r.returncode for r in run_parallel(commands, pg_repo))
    assert codes == [0] + [3] * 7
    registry = _registry(pg_repo)
    try:
        [claim] = registry.list()
        assert claim.agent == "race"
    finally:
        registry.close()
