"""Boundaries between agents: one agent cannot release, renew, roll back or commit into
another agent's lease without that lease's token; tokens are stored hashed and never shown.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, run


@pytest.fixture
def two(repo: Path) -> dict[str, dict[str, str]]:
    """Hooks installed; alice and bob each hold a lease (acquired through the CLI)."""
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    docs = {}
    for agent in ("alice", "bob"):
        proc = gitxact("worktree", "acquire", agent, "--json", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        docs[agent] = json.loads(proc.stdout)
    return docs


def as_agent(doc: dict[str, str]) -> dict[str, str]:
    return {"GITXACT_AGENT": doc["agent"], "GITXACT_LEASE_TOKEN": doc["token"]}


def test_release_and_renew_need_the_leases_own_token(repo: Path, two: dict[str, dict[str, str]]) -> None:
    alice, bob = two["alice"], two["bob"]
    for verb in ("release", "renew"):
        assert_clean_error(gitxact("worktree", verb, "alice", "--token", bob["token"], cwd=repo), 3)
        assert_clean_error(gitxact("worktree", verb, "alice", cwd=repo, env=as_agent(bob)), 3)
    assert os.path.isdir(alice["path"]), "the lease and its worktree are intact"
    assert gitxact("worktree", "renew", "alice", "--token", alice["token"], cwd=repo).returncode == 0


def test_another_agent_cannot_commit_or_move_the_branch_even_naming_no_agent(
    repo: Path, two: dict[str, dict[str, str]]
) -> None:
    alice, bob = two["alice"], two["bob"]
    here = Path(alice["path"])
    (here / "f.txt").write_text("x\n")
    git("add", "f.txt", cwd=here)
    before = git("rev-parse", "HEAD", cwd=here).strip()
    env = {"GITXACT_LEASE_TOKEN": bob["token"]}  # bob's token, no GITXACT_AGENT
    commit = run(["git", "commit", "-q", "-m", "bob's"], here, env)
    assert commit.returncode != 0
    assert "GITXACT_LEASE_TOKEN is not the token of the lease held by 'alice'" in commit.stderr
    move = run(["git", "update-ref", "refs/heads/gitxact/alice", "main"], repo, env)
    assert move.returncode != 0
    assert "ref update refused" in move.stderr
    assert git("rev-parse", "HEAD", cwd=here).strip() == before
    ok = run(["git", "commit", "-q", "-m", "alice's"], here, as_agent(alice))
    assert ok.returncode == 0, ok.stderr


def test_another_agent_cannot_run_or_roll_back_a_transaction(repo: Path, two: dict[str, dict[str, str]]) -> None:
    alice, bob = two["alice"], two["bob"]
    here = Path(alice["path"])
    assert gitxact("tx", "begin", cwd=here, env=as_agent(alice)).returncode == 0
    (here / "work.txt").write_text("alice's work\n")
    for args in (["tx", "rollback"], ["tx", "commit"], ["tx", "begin"]):
        assert_clean_error(gitxact(*args, cwd=here, env=as_agent(bob)), 3)
        assert_clean_error(gitxact(*args, cwd=here, env={"GITXACT_LEASE_TOKEN": bob["token"]}), 3)
    tdd = gitxact("tdd", "red", "--check", "false", "work.txt", cwd=here, env=as_agent(bob))
    assert_clean_error(tdd, 3)
    assert (here / "work.txt").read_text() == "alice's work\n"
    # The orchestrator, holding alice's token, may clean up for her.
    assert gitxact("tx", "rollback", cwd=here, env={"GITXACT_LEASE_TOKEN": alice["token"]}).returncode == 0
    assert not (here / "work.txt").exists()


def test_tokens_are_stored_hashed_and_never_printed(repo: Path, two: dict[str, dict[str, str]]) -> None:
    state = (repo / ".git" / "gitxact" / "state").iterdir()
    stored = b"".join(path.read_bytes() for path in state if path.is_file())
    outputs = [
        gitxact(*args, cwd=repo).stdout
        for args in (["status"], ["status", "--json"], ["worktree", "list"], ["worktree", "list", "--json"])
    ]
    outputs.append(run([*GITXACT, "doctor", "--json"], repo, {}).stdout)
    for doc in two.values():
        assert doc["token"].encode() not in stored
        assert b"sha256:" in stored
        for out in outputs:
            assert doc["token"] not in out
            assert "sha256:" not in out
