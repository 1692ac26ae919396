"""Lease ports across the clones of one host (issue 27), on PostgreSQL.

Two clones of one project on one host each keep their own ``leases.json``; on the
PostgreSQL backend a lease's ports are also recorded on its fleet claim, and an acquire
in either clone chooses clear of every claim of the host. Real acquires in real
processes; the claims are read back from the database. Another host's claims never
count: its loopback is its own.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from support.fleet import second_host
from support.proc import GITXACT, git, gitxact, kill_group, owner_process, run_parallel, wait_for_file

from fixtures.postgres import PostgresServer
from gitxact import Workspace
from gitxact.backends.choice import choose
from gitxact.backends.pg_registry import AgentClaim, AgentRegistry
from gitxact.backends.postgres import host_identity

LOW, HIGH = 24300, 24399  # apart from test_lease_ports.py's range: both may run at once


@pytest.fixture
def clones(pg_repo: Path, tmp_path: Path, postgres_server: PostgresServer) -> tuple[Path, Path]:
    """Two clones of one project on one host, in one namespace: two ports per lease."""
    (pg_repo / ".gitxact.toml").write_text(f'[lease]\nports = 2\nport-range = "{LOW}-{HIGH}"\n')
    git("add", ".gitxact.toml", cwd=pg_repo)
    git("commit", "-q", "-m", "two ports per lease", cwd=pg_repo)
    return pg_repo, second_host(pg_repo, tmp_path, postgres_server)


def acquire(clone: Path, agent: str, owner: int, env: dict[str, str] | None = None) -> list[int]:
    made = gitxact("worktree", "acquire", agent, "--owner-pid", str(owner), "--json", cwd=clone, env=env)
    assert made.returncode == 0, made.stderr
    ports: list[int] = json.loads(made.stdout)["ports"]
    return ports


def claimed_ports(clone: Path) -> dict[str, list[int]]:
    """Every claim's ports, as the database has them."""
    ws = Workspace(clone)
    registry = AgentRegistry.open(ws, choose(ws))
    try:
        return {claim.agent: claim.ports for claim in registry.list()}
    finally:
        registry.close()


def leased_ports(clone: Path) -> dict[str, list[int]]:
    listing = gitxact("worktree", "list", "--json", cwd=clone)
    assert listing.returncode == 0, listing.stderr
    return {lease["agent"]: lease["ports"] for lease in json.loads(listing.stdout)["leases"]}


def test_four_acquires_in_each_of_two_clones_at_once_get_distinct_ports(clones: tuple[Path, Path]) -> None:
    first, second = clones
    with owner_process() as owner:
        commands = [
            [*GITXACT, "-C", str(clone), "worktree", "acquire", f"{name}{n}", "--owner-pid", str(owner.pid), "--json"]
            for clone, name in ((first, "a"), (second, "b"))
            for n in range(4)
        ]
        results = run_parallel(commands, first)
        assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results if r.returncode]
        got = {doc["agent"]: doc["ports"] for doc in (json.loads(r.stdout) for r in results)}
        every = sorted(port for ports in got.values() for port in ports)
        assert every == list(range(LOW, LOW + 16)), got  # 16 distinct, the lowest of the range
        assert all(len(ports) == 2 for ports in got.values())
        assert claimed_ports(first) == got  # the claims carry what each lease was given
        assert leased_ports(first) == {f"a{n}": got[f"a{n}"] for n in range(4)}
        assert leased_ports(second) == {f"b{n}": got[f"b{n}"] for n in range(4)}
        for clone in (first, second):
            assert git("fsck", "--no-progress", cwd=clone) == ""


def test_a_released_leases_ports_are_reused_by_the_other_clone(clones: tuple[Path, Path]) -> None:
    first, second = clones
    with owner_process() as owner:
        made = gitxact("worktree", "acquire", "a1", "--owner-pid", str(owner.pid), "--json", cwd=first)
        assert made.returncode == 0, made.stderr
        a1 = json.loads(made.stdout)
        assert a1["ports"] == [LOW, LOW + 1]
        # Nothing listens on a1's ports: on files the other clone would pick them too.
        assert acquire(second, "b1", owner.pid) == [LOW + 2, LOW + 3]
        released = gitxact("worktree", "release", "a1", "--token", a1["token"], cwd=first)
        assert released.returncode == 0, released.stderr
        assert claimed_ports(first) == {"b1": [LOW + 2, LOW + 3]}
        assert acquire(second, "b2", owner.pid) == [LOW, LOW + 1]  # a1's, free with its claim
        assert acquire(first, "a2", owner.pid) == [LOW + 4, LOW + 5]
        assert claimed_ports(first) == {"b1": [LOW + 2, LOW + 3], "b2": [LOW, LOW + 1], "a2": [LOW + 4, LOW + 5]}


def claims_of(clone: Path) -> dict[str, AgentClaim]:
    ws = Workspace(clone)
    registry = AgentRegistry.open(ws, choose(ws))
    try:
        return {claim.agent: claim for claim in registry.list()}
    finally:
        registry.close()


def test_a_reaped_claims_ports_are_free_and_an_expired_ones_once_its_owner_is_gone(
    clones: tuple[Path, Path],
) -> None:
    first, second = clones
    with owner_process() as live, owner_process() as doomed:
        assert acquire(first, "kept", live.pid) == [LOW, LOW + 1]
        assert acquire(first, "reaped", doomed.pid) == [LOW + 2, LOW + 3]
        doomed.kill()
        doomed.wait()
        # Its owner is dead, but the claim stands until reaped or expired (as a lease
        # record does on files): the other clone still steers clear of its ports.
        assert acquire(second, "b1", live.pid) == [LOW + 4, LOW + 5]
        done = gitxact("worktree", "reap", "--json", cwd=first)
        assert done.returncode == 0, done.stderr
        assert [c["agent"] for c in json.loads(done.stdout)["claims_ended"]] == ["reaped"]
        assert acquire(second, "b2", live.pid) == [LOW + 2, LOW + 3]
        # Expiry, without a reap: claims that lapse fast, one of a dead owner, one of a live one.
        git("config", "gitxact.leaseTtl", "1", cwd=first)
        with owner_process() as gone:
            assert acquire(first, "expired", gone.pid) == [LOW + 6, LOW + 7]
            assert acquire(first, "alive", live.pid) == [LOW + 8, LOW + 9]
        deadline = time.monotonic() + 60
        while not all(claims_of(first)[agent].expired for agent in ("expired", "alive")):
            assert time.monotonic() < deadline, f"the claims never expired: {claims_of(first)}"
            time.sleep(0.2)
        claims = claims_of(first)
        assert claims["expired"].lapsed
        assert not claims["alive"].lapsed, "an expired claim whose owner runs here is kept (issue 24)"
        assert acquire(second, "b3", live.pid) == [LOW + 6, LOW + 7]  # the lapsed claim's, not the live one's
        assert {agent: claim.ports for agent, claim in claims_of(first).items()} == {
            "kept": [LOW, LOW + 1],
            "b1": [LOW + 4, LOW + 5],
            "b2": [LOW + 2, LOW + 3],
            "expired": [LOW + 6, LOW + 7],
            "alive": [LOW + 8, LOW + 9],
            "b3": [LOW + 6, LOW + 7],
        }
        # A reap then ends the lapsed claim (and its lease): nothing of it is left.
        done = gitxact("worktree", "reap", "--json", cwd=first)
        assert done.returncode == 0, done.stderr
        assert "expired" not in claims_of(first)
        assert claims_of(first)["alive"].ports == [LOW + 8, LOW + 9]


def test_another_hosts_claims_do_not_hold_this_hosts_ports(
    clones: tuple[Path, Path], tmp_path: Path, postgres_server: PostgresServer
) -> None:
    first, _ = clones
    elsewhere = second_host(first, tmp_path, postgres_server, name="elsewhere")
    with owner_process() as owner:
        there = acquire(elsewhere, "far", owner.pid, env={"GITXACT_TEST_HOST": "host-far"})
        assert there == [LOW, LOW + 1]
        assert acquire(first, "near", owner.pid) == [LOW, LOW + 1]  # the other host's loopback is its own
        assert acquire(elsewhere, "far2", owner.pid, env={"GITXACT_TEST_HOST": "host-far"}) == [LOW + 2, LOW + 3]
        assert claimed_ports(first) == {"far": [LOW, LOW + 1], "near": [LOW, LOW + 1], "far2": [LOW + 2, LOW + 3]}
        listed = gitxact("worktree", "list", "--all-hosts", "--json", cwd=first)
        assert listed.returncode == 0, listed.stderr
        assert {(c["agent"], c["host"]): c["ports"] for c in json.loads(listed.stdout)["claims"]} == {
            ("far", "host-far"): [LOW, LOW + 1],
            ("near", host_identity()): [LOW, LOW + 1],
            ("far2", "host-far"): [LOW + 2, LOW + 3],
        }
        assert f"{LOW + 2},{LOW + 3}" in gitxact("worktree", "list", "--all-hosts", cwd=first).stdout


def test_a_failed_setup_leaves_no_claim_and_no_ports(clones: tuple[Path, Path]) -> None:
    first, second = clones
    (first / ".gitxact.toml").write_text(f'[lease]\nsetup = ["exit 7"]\nports = 2\nport-range = "{LOW}-{HIGH}"\n')
    git("commit", "-q", "-am", "a setup that fails", cwd=first)
    assert gitxact("trust", cwd=first).returncode == 0
    with owner_process() as owner:
        failed = gitxact("worktree", "acquire", "a1", "--owner-pid", str(owner.pid), cwd=first)
        assert failed.returncode == 1, failed.stderr
        assert claimed_ports(first) == {}, "the acquire is undone with its claim, and the claim's ports"
        assert acquire(second, "b1", owner.pid) == [LOW, LOW + 1]


def recover_actions(clone: Path) -> list[str]:
    recovered = gitxact("recover", "--json", cwd=clone)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    return [action for step in json.loads(recovered.stdout)["steps"] for action in step["actions"]]


def test_recover_ends_the_claim_and_ports_of_an_acquire_killed_midway(clones: tuple[Path, Path]) -> None:
    """SIGKILL between the claim's ports and the lease record's: the ports are never handed
    out twice meanwhile, the host's lock is not left held, and recover, undoing the
    half-made lease, ends its claim and ports with it, though the lease's owner lives."""
    first, second = clones
    with owner_process() as owner, owner_process() as doomed:
        killed = gitxact(
            "worktree",
            "acquire",
            "a1",
            "--owner-pid",
            str(doomed.pid),
            cwd=first,
            env={"GITXACT_TEST_CRASHPOINT": "worktree-acquire-recorded"},
        )
        assert killed.returncode == -9
        assert claimed_ports(first) == {"a1": [LOW, LOW + 1]}
        # The killed process's session, and the host's lock with it, is gone: the other
        # clone allocates at once, clear of the ports the half-made lease holds.
        assert acquire(second, "b1", owner.pid) == [LOW + 2, LOW + 3]
        actions = recover_actions(first)
        assert any(a.startswith("ended the fleet's claim of a1 ") for a in actions), actions
        assert leased_ports(first) == {}
        assert claimed_ports(first) == {"b1": [LOW + 2, LOW + 3]}, "b1's owner lives: its claim is not recover's"
        assert acquire(second, "b2", owner.pid) == [LOW, LOW + 1], "a1's ports are free again"
        assert acquire(first, "a1", doomed.pid) == [LOW + 4, LOW + 5], "and its name, on the fleet"
        for clone in (first, second):
            assert git("fsck", "--no-progress", cwd=clone) == ""


def test_recover_after_an_acquire_sigkilled_in_its_setup_frees_its_claim_and_ports(
    clones: tuple[Path, Path], tmp_path: Path
) -> None:
    """A real SIGKILL from outside, while the setup runs (the record still ``provisioning``)."""
    first, second = clones
    started = tmp_path / "setup-started"
    (first / ".gitxact.toml").write_text(
        f'[lease]\nsetup = ["touch {started}; sleep 120"]\nports = 2\nport-range = "{LOW}-{HIGH}"\n'
    )
    git("commit", "-q", "-am", "a slow setup", cwd=first)
    assert gitxact("trust", cwd=first).returncode == 0
    with owner_process() as owner:
        acquiring = subprocess.Popen(
            [*GITXACT, "worktree", "acquire", "a1", "--owner-pid", str(owner.pid)],
            cwd=first,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_file(started, "the setup to start", acquiring)
        finally:
            kill_group(acquiring)
        assert claimed_ports(first) == {"a1": [LOW, LOW + 1]}
        actions = recover_actions(first)
        assert any(a.startswith("undo-acquire a1 ") for a in actions), actions
        assert any(a.startswith("ended the fleet's claim of a1 ") for a in actions), actions
        assert (claimed_ports(first), leased_ports(first)) == ({}, {})
        assert acquire(second, "b1", owner.pid) == [LOW, LOW + 1]
        assert git("worktree", "list", "--porcelain", cwd=first).count("worktree ") == 1


def test_recover_with_the_server_down_repairs_this_host_and_leaves_the_claim(clones: tuple[Path, Path]) -> None:
    first, _ = clones
    with owner_process() as owner:
        crash = {"GITXACT_TEST_CRASHPOINT": "worktree-acquire-recorded"}
        killed = gitxact("worktree", "acquire", "a1", "--owner-pid", str(owner.pid), cwd=first, env=crash)
        assert killed.returncode == -9
        url = git("config", "gitxact.backend", cwd=first).strip()
        git("config", "gitxact.backend", "postgresql:///postgres?host=/nonexistent/x&user=nobody", cwd=first)
        recovered = gitxact("recover", "--json", cwd=first)  # the server does not answer
        git("config", "gitxact.backend", url, cwd=first)
        assert recovered.returncode == 0, recovered.stdout + recovered.stderr
        actions = [a for step in json.loads(recovered.stdout)["steps"] for a in step["actions"]]
        assert any(a.startswith("undo-acquire a1 ") for a in actions), actions
        assert any(a.startswith("left the fleet's claims as they are: cannot reach PostgreSQL") for a in actions), (
            actions
        )
        assert leased_ports(first) == {}
        assert claimed_ports(first) == {"a1": [LOW, LOW + 1]}, "left as it is"
        # The server answers again: the lease is gone here, so the claim ends as any such
        # claim does, at its expiry or once its owner is dead.
        assert recover_actions(first) == []
        owner.kill()
        owner.wait()
        assert any(a.startswith("ended the fleet's claim of a1 ") for a in recover_actions(first))
        assert claimed_ports(first) == {}
