"""Issue 25: a host cut off from PostgreSQL by a real network partition (network namespaces,
a veth link set down) never holds a named lock, or leases an agent, together with another.

The bounds are scaled down (``GITXACT_TEST_DEAD_PEER_BOUND``, every process alike) so a
cut plays out in seconds; what is asserted is order (who ended before whom, by timestamps
the processes wrote), never a duration.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.netns import SERVER_ADDR, Partition, partition_or_skip
from support.proc import GITXACT, git, kill_group, owner_process, wait_for_file

from fixtures.postgres import PostgresServer, start_server

BOUND = "10"  # seconds: the holder gives up at 5, its command is SIGKILLed by 7, the server frees at 10

_JOB = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    log, role = sys.argv[1], sys.argv[2]

    def tick(word):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, f"{role} {word} {time.time_ns()} {os.environ.get('GITXACT_FENCE')}\\n".encode())
        os.close(fd)

    tick("start")
    if role == "b":
        sys.exit(0)
    if role == "a":
        # A grandchild that ignores SIGTERM: only the group's SIGKILL stops it.
        subprocess.Popen([sys.executable, sys.argv[0], log, "a-child"])
        signal.signal(signal.SIGTERM, lambda *_: (tick("term"), sys.exit(143)))
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        tick("work")
        time.sleep(0.05)
    """
)


@contextlib.contextmanager
def _network(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Partition, PostgresServer]]:
    """The partition and a server listening in its server namespace; both removed afterwards."""
    for variable in list(os.environ):
        if variable.startswith("PG"):
            monkeypatch.delenv(variable)
    monkeypatch.setenv("GITXACT_TEST_DEAD_PEER_BOUND", BOUND)
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
    git("config", "gitxact.namespace", "partition", cwd=repo)
    clone_b = tmp_path / "host-b"
    git("clone", "-q", str(repo), str(clone_b), cwd=tmp_path)
    git("config", "gitxact.namespace", "partition", cwd=clone_b)
    for clone in (repo, clone_b):
        done = _in(net.server, clone, "init", "--backend", server.tcp_dsn)
        assert done.returncode == 0, done.stderr
    return repo, clone_b


def _in(ns: str, cwd: Path, *args: str, host: str = "host-b") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *GITXACT, *args],
        cwd=cwd,
        env={**os.environ, "GITXACT_TEST_HOST": host},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _start(ns: str, cwd: Path, *args: str, host: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            ["ip", "netns", "exec", ns, *GITXACT, *args],
            cwd=cwd,
            env={**os.environ, "GITXACT_TEST_HOST": host},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _ticks(log: Path) -> list[tuple[str, str, int, str]]:
    rows = []
    for line in log.read_text().splitlines():
        role, word, stamp, fence = line.split()
        rows.append((role, word, int(stamp), fence))
    return rows


def test_a_cut_holder_ends_its_command_before_the_other_host_gets_the_lock(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _network(monkeypatch) as (net, server):
        clone_a, clone_b = _hosts(repo, tmp_path, net, server)
        job = tmp_path / "job.py"
        job.write_text(_JOB)
        log = tmp_path / "ticks"
        a_out, b_out = tmp_path / "a.out", tmp_path / "b.out"
        lock = ["lock", "--name", "deploy", "--timeout", "120", "--", sys.executable, str(job), str(log)]
        holder = _start(net.client, clone_a, *lock, "a", host="host-a", log=a_out)
        other: subprocess.Popen[bytes] | None = None
        try:
            wait_for_file(log, "host A's job to start", holder)
            deadline = time.monotonic() + 60
            while sum(1 for r in _ticks(log) if r[0] == "a-child") < 2:  # the grandchild is at work too
                assert time.monotonic() < deadline, a_out.read_text()
                time.sleep(0.05)
            net.cut()
            other = _start(net.server, clone_b, *lock, "b", host="host-b", log=b_out)
            assert holder.wait(timeout=120) == 75, a_out.read_text()
            assert other.wait(timeout=120) == 0, b_out.read_text()
        finally:
            for proc in (holder, other):
                if proc is not None and proc.poll() is None:
                    kill_group(proc)
        said = a_out.read_text()
        assert "was given up" in said, said
        assert "the command was ended (SIGKILL)" in said, said
        ticks = _ticks(log)
        [b_start] = [r for r in ticks if r[0] == "b"]
        a_rows = [r for r in ticks if r[0] != "b"]
        assert {r[0] for r in a_rows} == {"a", "a-child"}
        assert ("a", "term") in {(r[0], r[1]) for r in a_rows}, "the job got SIGTERM first"
        # Zero overlap: every tick of A's job and of its grandchild came before B's job began.
        assert max(r[2] for r in a_rows) < b_start[2]
        # Fencing: B's grant carries a larger token than A's.
        assert int(b_start[3]) > int(a_rows[0][3]) >= 1


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
