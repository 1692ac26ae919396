"""Lease ports that never collide (issue 27): `lease.ports = N` in `.gitxact.toml`.

Real acquires in real processes: their ports are distinct across every lease of the
clone, a port something listens on is skipped, and ports come free again with the
lease's record (release or reap). Setup runs outside the repository lock: another
acquire completes while it runs.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import GITXACT, git, gitxact, run_parallel

from fixtures.repos import make_repo
from gitxact.leases.records import Lease

LOW, HIGH = 24100, 24199


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitxact.toml").write_text(f'[lease]\nports = 2\nport-range = "{LOW}-{HIGH}"\n')
    git("add", ".gitxact.toml", cwd=repo)
    git("commit", "-q", "-m", "two ports per lease", cwd=repo)
    assert gitxact("init", cwd=repo).returncode == 0
    return repo


def acquire(repo: Path, agent: str, owner: int) -> dict[str, object]:
    made = gitxact("worktree", "acquire", agent, "--owner-pid", str(owner), "--json", cwd=repo)
    assert made.returncode == 0, made.stderr
    doc: dict[str, object] = json.loads(made.stdout)
    return doc


def listed_ports(repo: Path) -> dict[str, list[int]]:
    listing = gitxact("worktree", "list", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    return {lease["agent"]: lease["ports"] for lease in json.loads(listing.stdout)["leases"]}


def test_eight_acquires_at_once_get_distinct_ports_skipping_one_in_use(
    repo: Path, owner: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("OUT", str(out))
    setup = 'echo "$GITXACT_PORTS" > "$OUT/$GITXACT_AGENT"'  # each setup records what it was given
    (repo / ".gitxact.toml").write_text(
        f'[lease]\nsetup = [{json.dumps(setup)}]\nports = 2\nport-range = "{LOW}-{HIGH}"\n'
    )
    git("commit", "-q", "-am", "record the ports", cwd=repo)
    assert gitxact("trust", cwd=repo).returncode == 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", LOW + 3))  # something already listens on one port of the range
        listener.listen()
        commands = [[*GITXACT, "worktree", "acquire", f"a{n}", "--owner-pid", str(owner), "--json"] for n in range(8)]
        results = run_parallel(commands, repo)
    assert [r.returncode for r in results] == [0] * 8, [r.stderr for r in results if r.returncode]
    docs = [json.loads(r.stdout) for r in results]
    every = sorted(port for doc in docs for port in doc["ports"])
    assert len(every) == 16
    # Distinct, the lowest of the range, and never the one in use.
    assert every == [p for p in range(LOW, LOW + 17) if p != LOW + 3]
    assert all(doc["env"]["GITXACT_PORTS"] == ",".join(map(str, doc["ports"])) for doc in docs)
    assert {path.name: path.read_text() for path in out.iterdir()} == {
        doc["agent"]: ",".join(map(str, doc["ports"])) + "\n" for doc in docs
    }
    assert listed_ports(repo) == {doc["agent"]: doc["ports"] for doc in docs}
    status = gitxact("status", "--json", cwd=repo)
    assert {lease["agent"]: lease["ports"] for lease in json.loads(status.stdout)["leases"]} == listed_ports(repo)
    table = gitxact("worktree", "list", cwd=repo).stdout
    assert "PORTS" in table
    assert f"{docs[0]['ports'][0]},{docs[0]['ports'][1]}" in table


def test_ports_are_free_again_after_a_release_and_after_a_reap(repo: Path, owner: int) -> None:
    first = acquire(repo, "a1", owner)
    second = acquire(repo, "a2", owner)
    assert first["ports"] == [LOW, LOW + 1]
    assert second["ports"] == [LOW + 2, LOW + 3]
    released = gitxact("worktree", "release", "a1", "--token", str(first["token"]), cwd=repo)
    assert released.returncode == 0, released.stderr
    assert acquire(repo, "a3", owner)["ports"] == [LOW, LOW + 1]  # a1's, reused
    # A lease whose owner died: reap drops its record, and its ports with it.
    doomed = subprocess.Popen(["sleep", "600"])
    acquire(repo, "a4", doomed.pid)
    assert listed_ports(repo)["a4"] == [LOW + 4, LOW + 5]
    doomed.kill()
    doomed.wait()
    reaped = gitxact("worktree", "reap", cwd=repo)
    assert reaped.returncode == 0, reaped.stderr
    assert "a4" not in listed_ports(repo)
    assert acquire(repo, "a5", owner)["ports"] == [LOW + 4, LOW + 5]
    assert sorted(p for ports in listed_ports(repo).values() for p in ports) == list(range(LOW, LOW + 6))


def test_a_range_too_small_refuses_the_acquire_and_makes_nothing(repo: Path, owner: int) -> None:
    git("config", "gitxact.leasePortRange", f"{LOW}-{LOW + 2}", cwd=repo)
    acquire(repo, "a1", owner)
    refused = gitxact("worktree", "acquire", "a2", "--owner-pid", str(owner), cwd=repo)
    assert refused.returncode == 3, refused.stderr
    assert "no 2 free port(s)" in refused.stderr
    assert sorted(listed_ports(repo)) == ["a1"]
    assert git("branch", "--list", "gitxact/a2", cwd=repo) == ""
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 2


def test_setup_runs_outside_the_repository_lock(tmp_path: Path, owner: int) -> None:
    """Another acquire (which needs the repository lock, exclusive) completes while a1's setup runs."""
    repo = make_repo(tmp_path / "repo")
    out = tmp_path / "out"
    out.mkdir()
    nested = (
        'if [ "$GITXACT_AGENT" = a1 ]; then "$PY" -m gitxact worktree acquire b1 --owner-pid "$OWNER" '
        '--timeout 20 --json > "$OUT/b1.json"; fi'
    )
    (repo / ".gitxact.toml").write_text(f"[lease]\nsetup = [{json.dumps(nested)}]\nports = 1\n")
    git("add", ".gitxact.toml", cwd=repo)
    git("commit", "-q", "-m", "setup", cwd=repo)
    assert gitxact("trust", cwd=repo).returncode == 0
    env = {"PY": sys.executable, "OWNER": str(owner), "OUT": str(out)}
    made = gitxact("worktree", "acquire", "a1", "--owner-pid", str(owner), "--json", cwd=repo, env=env)
    assert made.returncode == 0, made.stderr
    inner = json.loads((out / "b1.json").read_text())
    outer = json.loads(made.stdout)
    assert inner["agent"] == "b1"
    assert inner["ports"] != outer["ports"]  # b1's record was written while a1's already held its port
    assert sorted(listed_ports(repo)) == ["a1", "b1"]


def test_a_lease_record_without_ports_still_reads() -> None:
    old = {
        "agent": "a1",
        "path": "/x",
        "branch": "gitxact/a1",
        "base": "main",
        "token_hash": "h",
        "owner_pid": os.getpid(),
        "owner_host": "h",
        "created": 1.0,
        "heartbeat": 1.0,
        "ttl": 60.0,
    }
    lease = Lease.model_validate(old)
    assert lease.ports == []
    assert lease.teardown == []
    assert lease.config_sha is None
    with pytest.raises(ValueError, match="ports: must be a list of integers"):
        Lease.model_validate({**old, "ports": [1, "2"]})
    with pytest.raises(ValueError, match="ports: must be a list of integers"):
        Lease.model_validate({**old, "ports": [True]})


@pytest.mark.parametrize("point", ["worktree-acquire-recorded", "worktree-acquire-registered"])
def test_ports_of_an_acquire_killed_midway_are_free_after_recover(repo: Path, owner: int, point: str) -> None:
    killed = gitxact(
        "worktree", "acquire", "a1", "--owner-pid", str(owner), cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point}
    )
    assert killed.returncode == -9
    assert listed_ports(repo) == {"a1": [LOW, LOW + 1]}  # recorded with the provisioning record
    recovered = gitxact("recover", cwd=repo)
    assert recovered.returncode == 0, recovered.stderr
    assert listed_ports(repo) == {}
    assert acquire(repo, "a2", owner)["ports"] == [LOW, LOW + 1]
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 2
