"""Scale limits of issue 27: ``gitxact.maxLeases`` refuses a lease beyond a count.

Real acquires in real processes, at once: the count is checked under the ``leases`` lock
where each record is written, so together they can never pass it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.proc import GITXACT, git, gitxact, run_parallel

from fixtures.repos import make_repo
from gitxact.state.checksums import checksum_of


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert gitxact("init", cwd=repo).returncode == 0
    return repo


def listed(repo: Path) -> list[dict[str, object]]:
    listing = gitxact("worktree", "list", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    leases: list[dict[str, object]] = json.loads(listing.stdout)["leases"]
    return leases


def test_eight_acquires_at_once_with_max_leases_five_make_exactly_five(repo: Path, owner: int) -> None:
    git("config", "gitxact.maxLeases", "5", cwd=repo)
    commands = [[*GITXACT, "worktree", "acquire", f"a{n}", "--owner-pid", str(owner), "--json"] for n in range(8)]
    results = run_parallel(commands, repo, timeout=300)
    codes = sorted(r.returncode for r in results)
    assert codes == [0] * 5 + [3] * 3, [(r.returncode, r.stderr) for r in results]
    made = {json.loads(r.stdout)["agent"] for r in results if r.returncode == 0}
    for refused in (r for r in results if r.returncode == 3):
        assert "gitxact.maxLeases is 5" in refused.stderr
        assert "Traceback" not in refused.stderr
        for agent in made:  # the refusal names the leases that hold the places
            assert agent in refused.stderr
    assert {lease["agent"] for lease in listed(repo)} == made
    # Nothing of a refused acquire is left: no folder, no registration, no branch.
    worktrees = git("worktree", "list", "--porcelain", cwd=repo)
    assert worktrees.count("worktree ") == 6
    branches = git("for-each-ref", "--format=%(refname:short)", "refs/heads/gitxact/", cwd=repo).split()
    assert sorted(branches) == sorted(f"gitxact/{agent}" for agent in made)
    root = repo.parent / "repo.worktrees"
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) == sorted(made)
    git("fsck", "--no-progress", cwd=repo)


def test_a_released_lease_frees_its_place_and_the_agent_holding_one_gets_it_back(repo: Path, owner: int) -> None:
    git("config", "gitxact.maxLeases", "1", cwd=repo)
    first = gitxact("worktree", "acquire", "one", "--owner-pid", str(owner), "--json", cwd=repo)
    assert first.returncode == 0, first.stderr
    token = json.loads(first.stdout)["token"]
    # The agent that holds the one lease is given it again: that is not a new lease.
    again = gitxact("worktree", "acquire", "one", "--owner-pid", str(owner), "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["existing"] is True
    refused = gitxact("worktree", "acquire", "two", "--owner-pid", str(owner), cwd=repo)
    assert refused.returncode == 3, refused.stderr
    assert "gitxact.maxLeases is 1 and 1 lease(s) exist (one)" in refused.stderr
    assert gitxact("worktree", "release", "one", "--token", token, cwd=repo).returncode == 0
    second = gitxact("worktree", "acquire", "two", "--owner-pid", str(owner), cwd=repo)
    assert second.returncode == 0, second.stderr


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_a_bad_max_leases_is_a_usage_error_naming_the_key(repo: Path, value: str) -> None:
    git("config", "gitxact.maxLeases", value, cwd=repo)
    proc = gitxact("worktree", "acquire", "one", cwd=repo)
    assert proc.returncode == 2, proc.stderr
    assert "gitxact.maxLeases" in proc.stderr


def du_bytes(path: Path) -> int:
    """What coreutils' du says the folder takes on disk (allocated blocks, hard links once)."""
    out = subprocess.run(["du", "-s", "--block-size=1", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def test_each_lease_shows_its_size_as_measured_at_acquire_and_again_only_when_asked(repo: Path, owner: int) -> None:
    made = {}
    for agent in ("one", "two"):
        proc = gitxact("worktree", "acquire", agent, "--owner-pid", str(owner), "--json", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        made[agent] = Path(json.loads(proc.stdout)["path"])
    first = {lease["agent"]: lease for lease in listed(repo)}
    for agent, path in made.items():
        assert first[agent]["disk_bytes"] == du_bytes(path)  # the walk at acquire is du's figure
        assert isinstance(first[agent]["disk_age"], float)
    # An agent's build adds a MiB: the listing shows the recorded figure (no walk on every call) ...
    (made["one"] / "build.bin").write_bytes(os.urandom(1 << 20))
    again = {lease["agent"]: lease for lease in listed(repo)}
    assert again["one"]["disk_bytes"] == first["one"]["disk_bytes"]
    # ... until --sizes measures again, and records it for the next listings.
    sized = gitxact("worktree", "list", "--sizes", "--json", cwd=repo)
    assert sized.returncode == 0, sized.stderr
    doc = json.loads(sized.stdout)
    now = {lease["agent"]: lease for lease in doc["leases"]}
    assert now["one"]["disk_bytes"] == du_bytes(made["one"])
    assert now["one"]["disk_bytes"] >= first["one"]["disk_bytes"] + (1 << 20)
    assert doc["disk_bytes"] == now["one"]["disk_bytes"] + now["two"]["disk_bytes"]
    assert {lease["agent"]: lease["disk_bytes"] for lease in listed(repo)} == {
        agent: lease["disk_bytes"] for agent, lease in now.items()
    }
    status = gitxact("status", "--json", cwd=repo)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["leases_disk_bytes"] == doc["disk_bytes"]
    table = gitxact("worktree", "list", cwd=repo)
    assert table.returncode == 0, table.stderr
    assert "DISK" in table.stdout
    assert "disk: " in table.stdout
    assert "in 2 lease(s) as last measured" in table.stdout
    assert "disk " in gitxact("status", cwd=repo).stdout


def test_a_record_written_before_sizes_were_recorded_is_read_and_shown_unknown(repo: Path, owner: int) -> None:
    proc = gitxact("worktree", "acquire", "old", "--owner-pid", str(owner), "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    state = repo / ".git" / "gitxact" / "state" / "leases.json"
    envelope = json.loads(state.read_text())
    record = envelope["data"]["leases"]["old"]
    del record["disk_bytes"], record["disk_measured"]  # as an older gitxact wrote it
    envelope["checksum"] = checksum_of(envelope)
    state.write_text(json.dumps(envelope))
    (lease,) = listed(repo)
    assert lease["disk_bytes"] is None
    assert lease["disk_age"] is None
    table = gitxact("worktree", "list", cwd=repo)
    assert "1 never measured" in table.stdout, table.stdout
    sized = gitxact("worktree", "list", "--sizes", "--json", cwd=repo)
    assert json.loads(sized.stdout)["leases"][0]["disk_bytes"] == du_bytes(Path(lease["path"]))
