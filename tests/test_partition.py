"""Issue 25: a host cut off from PostgreSQL by a real network partition (network namespaces,
a veth link set down) never holds a named lock, or leases an agent, together with another.

The bounds are scaled down (``GITXACT_TEST_DEAD_PEER_BOUND``, set for every process the
round starts) so a cut plays out in seconds; what is asserted is order (who ended before
whom, by timestamps the processes wrote), never a duration.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.netns import partition_or_skip
from support.proc import git, owner_process

from fixtures.partition import SERVER_ADDR, Partition, join_hosts, partitioned_holder, run_in
from fixtures.postgres import PostgresServer, start_server


@contextlib.contextmanager
def _network(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Partition, PostgresServer]]:
    """The partition and a server listening in its server namespace; both removed afterwards."""
    for variable in list(os.environ):
        if variable.startswith("PG"):
            monkeypatch.delenv(variable)
    with partition_or_skip() as net:
        try:
            server = start_server(netns=net.server, listen=SERVER_ADDR)
        except FileNotFoundError:
            pytest.skip("PostgreSQL's initdb is not installed")
        try:
            yield net, server
        finally:
            server.remove()


def _hosts(repo: Path, tmp_path: Path, net: Partition, server: PostgresServer) -> tuple[Path, Path]:
    """Host A's clone (reaching the server over the veth link) and host B's (beside the server)."""
    join_hosts(repo, tmp_path / "host-b", net, server.tcp_dsn)
    return repo, tmp_path / "host-b"


def _in(ns: str, cwd: Path, *args: str, host: str = "host-b") -> subprocess.CompletedProcess[str]:
    return run_in(ns, cwd, *args, host=host)


def test_a_cut_holder_ends_its_command_before_the_other_host_gets_the_lock(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _network(monkeypatch) as (net, server):
        clone_a, clone_b = _hosts(repo, tmp_path, net, server)
        seen = partitioned_holder(net, clone_a, clone_b, tmp_path / "round")
        assert seen.a_exit == 75, seen.a_said
        assert seen.b_exit == 0, seen.b_said
        assert "was given up" in seen.a_said, seen.a_said
        assert "the command was ended (SIGKILL)" in seen.a_said, seen.a_said
        assert {t[0] for t in seen.a_ticks} == {"a", "a-child"}
        assert ["a", "term"] in [t[:2] for t in seen.a_ticks], "the job got SIGTERM first"
        b_start = seen.b_start
        assert b_start is not None
        # Zero overlap: every tick of A's job and of its grandchild came before B's job began.
        assert max(int(t[2]) for t in seen.a_ticks) < int(b_start[2])
        assert not seen.overlapped()
        # Fencing: B's grant carries a larger token than A's.
        assert int(b_start[3]) > int(seen.a_ticks[0][3]) >= 1
        assert seen.problems() == []


def test_a_stale_lease_on_a_cut_host_never_touches_the_new_owners_claim(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A's claim expires while A is cut off; B takes the agent. Back on the network, A's
    renew is refused, its release ends only its local lease (and says so), its acquire is
    refused while B holds the agent, and its reap leaves B's claim alone."""
    with _network(monkeypatch) as (net, server):
        clone_a, clone_b = _hosts(repo, tmp_path, net, server)
        git("config", "gitxact.leaseTtl", "2", cwd=clone_a)
        with owner_process() as owner_a, owner_process() as owner_b:
            got = _in(net.client, clone_a, "worktree", "acquire", "agent-1", "--json", "--owner-pid", str(owner_a.pid),
                      host="host-a")  # fmt: skip
            assert got.returncode == 0, got.stderr
            token = json.loads(got.stdout)["token"]
            net.cut()
            deadline = time.monotonic() + 60
            while not _claims(net, clone_b)[0]["expired"]:  # A cannot renew: its claim runs out
                assert time.monotonic() < deadline, "the claim never expired"
                time.sleep(0.2)
            taken = _in(net.server, clone_b, "worktree", "acquire", "agent-1", "--owner-pid", str(owner_b.pid))
            assert taken.returncode == 0, taken.stderr
            [b_claim] = _claims(net, clone_b)
            assert (b_claim["host"], b_claim["pid"], b_claim["expired"]) == ("host-b", owner_b.pid, False)
            net.heal()

            renew = _in(net.client, clone_a, "worktree", "renew", "agent-1", "--token", token, host="host-a")
            assert renew.returncode == 3, renew.stderr
            assert "no longer this lease's: now agent agent-1" in renew.stderr
            assert "on host-b" in renew.stderr
            release = _in(net.client, clone_a, "worktree", "release", "agent-1", "--token", token, host="host-a")
            assert release.returncode == 0, release.stderr
            assert "fleet claim not this lease's any more" in release.stdout, release.stdout
            assert "only the local lease ended" in release.stdout
            again = _in(net.client, clone_a, "worktree", "acquire", "agent-1", "--owner-pid", str(owner_a.pid),
                        host="host-a")  # fmt: skip
            assert again.returncode == 3, again.stderr
            assert "on host-b" in again.stderr
            reap = _in(net.client, clone_a, "worktree", "reap", "--json", host="host-a")
            assert reap.returncode == 0, reap.stderr
            assert json.loads(reap.stdout)["claims_ended"] == []
            assert _claims(net, clone_b) == [b_claim], "B's claim is exactly as B left it"
            listed = _in(net.server, clone_b, "worktree", "list", "--json")
            assert [lease["agent"] for lease in json.loads(listed.stdout)["leases"]] == ["agent-1"]


def _claims(net: Partition, clone: Path) -> list[dict[str, object]]:
    listed = _in(net.server, clone, "worktree", "list", "--all-hosts", "--json")
    assert listed.returncode == 0, listed.stderr
    claims: list[dict[str, object]] = json.loads(listed.stdout)["claims"]
    return claims
