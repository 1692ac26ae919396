"""A lease that ends takes its worktree's open transaction with it, losing nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.proc import assert_clean_error, git, gitxact, owner_process


def test_reaping_a_dead_agents_lease_rolls_its_transaction_back_and_saves_everything(repo: Path) -> None:
    with owner_process() as owner:  # SIGKILLed and reaped when the block ends
        doc = json.loads(gitxact("worktree", "acquire", "w1", "--json", "--owner-pid", str(owner.pid), cwd=repo).stdout)
        here = Path(doc["path"])
        (here / "before.txt").write_text("uncommitted before the transaction\n")
        start = git("rev-parse", "HEAD", cwd=here).strip()
        assert gitxact("tx", "begin", cwd=here).returncode == 0
        (here / "inside.txt").write_text("committed inside\n")
        git("add", "inside.txt", cwd=here)
        git("commit", "-q", "-m", "inside the transaction", cwd=here)
        inside = git("rev-parse", "HEAD", cwd=here).strip()
    recovered = gitxact("recover", "--json", cwd=repo)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert not here.exists()
    tip = git("rev-parse", "--verify", "-q", "refs/heads/gitxact/w1", cwd=repo, check=False).strip()
    assert tip in ("", start), "all or nothing: back at the start (then deleted, as main holds it)"
    snapshots = git("for-each-ref", "--format=%(objectname)", "refs/gitxact/snapshots/w1/", cwd=repo).split()
    assert len(snapshots) == 2
    assert any(
        subprocess.run(["git", "merge-base", "--is-ancestor", inside, s], cwd=repo, check=False).returncode == 0
        for s in snapshots
    ), "the transaction's commit stays reachable from a snapshot ref"
    assert any(
        git("show", f"{s}:before.txt", cwd=repo, check=False) == "uncommitted before the transaction\n"
        for s in snapshots
    )
    assert json.loads(gitxact("tx", "list", "--json", cwd=repo).stdout)["transactions"] == []
    again = json.loads(gitxact("worktree", "acquire", "w1", "--json", cwd=repo).stdout)
    assert gitxact("tx", "begin", cwd=Path(again["path"])).returncode == 0, "the next lease starts clean"


def test_release_refuses_an_open_transaction_unless_forced(repo: Path) -> None:
    doc = json.loads(gitxact("worktree", "acquire", "w2", "--json", cwd=repo).stdout)
    here = Path(doc["path"])
    assert gitxact("tx", "begin", cwd=here).returncode == 0
    refused = gitxact("worktree", "release", "w2", "--token", doc["token"], cwd=repo)
    assert_clean_error(refused, 3)
    assert "is open" in refused.stderr
    forced = gitxact("worktree", "release", "w2", "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert "rolled back" in forced.stdout
    assert json.loads(gitxact("tx", "list", "--json", cwd=repo).stdout)["transactions"] == []


def test_reap_saves_the_work_of_an_agent_killed_while_git_held_its_index_lock(repo: Path) -> None:
    with owner_process() as owner:  # SIGKILLed and reaped when the block ends
        doc = json.loads(gitxact("worktree", "acquire", "w3", "--json", "--owner-pid", str(owner.pid), cwd=repo).stdout)
        here = Path(doc["path"])
        (here / "draft.txt").write_text("unsaved draft\n")
        git_dir = Path(git("rev-parse", "--absolute-git-dir", cwd=here).strip())
        (git_dir / "index.lock").write_bytes(b"")  # what a SIGKILLed `git add` leaves
    reaped = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reaped.returncode == 0, reaped.stdout + reaped.stderr
    ref = json.loads(reaped.stdout)["ended"][0]["snapshot_ref"]
    assert git("show", f"{ref}:draft.txt", cwd=repo) == "unsaved draft\n"
    assert not here.exists()
