"""No agent lands onto another agent's leased branch, through any entry point (issue 25 part 3).

Two leases, hooks installed; agent-2 has a transaction open with work in it. agent-1
tries to land onto ``gitxact/agent-2`` from the CLI (naming itself, from its own worktree,
as a person with no name, with its own token) and from the library: each is refused with
exit 3 and reason ``leased_by_other``; agent-2's branch, worktree and ``git status`` are
exactly as they were, and its rollback still takes it back to where its transaction
began. The lander's own move of the target is judged by the reference-transaction hook
(no internal marker on it). Landing onto main, landing agent-2's branch as the *source*,
and agent-2 landing onto its own branch all still work.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.proc import assert_clean_error, git, gitxact
from support.tx import fingerprint

from gitxact import Workspace
from gitxact.errors import EXIT_REFUSED
from gitxact.git import refs
from gitxact.land import boundary, candidate

A2 = "refs/heads/gitxact/agent-2"


@pytest.fixture
def two(repo: Path) -> dict[str, dict[str, str]]:
    """Hooks installed; agent-1 has a commit on its branch, agent-2 an open transaction with work in it."""
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    docs: dict[str, dict[str, str]] = {}
    for agent in ("agent-1", "agent-2"):
        proc = gitxact("worktree", "acquire", agent, "--json", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        docs[agent] = json.loads(proc.stdout)
    one = Path(docs["agent-1"]["path"])
    (one / "feature.txt").write_text("agent-1's feature\n")
    git("add", "feature.txt", cwd=one)
    git("commit", "-q", "-m", "agent-1's feature", cwd=one)
    two = Path(docs["agent-2"]["path"])
    (two / "before.txt").write_text("uncommitted before the transaction\n")
    assert gitxact("tx", "begin", "work", cwd=two, env=as_agent(docs["agent-2"])).returncode == 0
    docs["agent-2"]["at_begin"] = json.dumps(fingerprint(two))
    (two / "inside.txt").write_text("committed inside the transaction\n")
    git("add", "inside.txt", cwd=two)
    git("commit", "-q", "-m", "agent-2's step", cwd=two)
    (two / "draft.txt").write_text("uncommitted inside the transaction\n")
    return docs


def as_agent(doc: dict[str, str]) -> dict[str, str]:
    return {"GITXACT_AGENT": doc["agent"], "GITXACT_LEASE_TOKEN": doc["token"]}


def test_every_cli_way_of_landing_onto_another_agents_branch_is_refused(
    repo: Path, two: dict[str, dict[str, str]]
) -> None:
    one, other = Path(two["agent-1"]["path"]), Path(two["agent-2"]["path"])
    branch_before = git("rev-parse", A2, cwd=repo).strip()
    worktree_before = fingerprint(other)
    attempts = [
        (repo, {"GITXACT_AGENT": "agent-1"}, ["gitxact/agent-1"]),  # naming itself, from the main worktree
        (one, {}, []),  # in its own leased worktree, naming no agent: it acts for agent-1
        (one, {"GITXACT_LEASE_TOKEN": two["agent-1"]["token"]}, []),  # its own token is not agent-2's
        (repo, {}, ["gitxact/agent-1"]),  # a person naming no agent: would still write into agent-2's worktree
        (repo, {"GITXACT_AGENT": "agent-1"}, ["gitxact/agent-1", "--json"]),
        (one, {}, ["--remote", str(repo)]),  # "a remote" that is this very repository
        (one, {}, ["--remote", f"file://{other}"]),  # or one of its worktrees
    ]
    for cwd, env, args in attempts:
        proc = gitxact("land", *args, "--onto", "gitxact/agent-2", cwd=cwd, env=env)
        assert_clean_error(proc, EXIT_REFUSED)
        assert "[leased_by_other]" in proc.stderr, proc.stderr
        assert "'agent-2'" in proc.stderr
    assert git("rev-parse", A2, cwd=repo).strip() == branch_before
    assert fingerprint(other) == worktree_before, "agent-2's worktree, index and status are untouched"
    queue = json.loads(gitxact("land", "--status", "--json", cwd=repo).stdout)
    assert queue["queues"] == [], "nothing was even queued"
    stats = json.loads(gitxact("stats", "--json", cwd=repo).stdout)
    assert stats["refusals"]["land"] == len(attempts), "each refusal is in the event record"

    # agent-2's rollback takes it back to where its transaction began, nothing of agent-1's in it.
    rolled = gitxact("tx", "rollback", cwd=other, env=as_agent(two["agent-2"]))
    assert rolled.returncode == 0, rolled.stderr
    assert fingerprint(other) == json.loads(two["agent-2"]["at_begin"])
    assert not (other / "feature.txt").exists()

    # What stays allowed: onto main; another agent's branch as the source (read only); the owner onto its own.
    landed = gitxact("land", "--onto", "main", cwd=one, env={"GITXACT_AGENT": "agent-1"})
    assert landed.returncode == 0, landed.stderr
    assert git("show", "main:feature.txt", cwd=repo) == "agent-1's feature\n"
    (other / "own.txt").write_text("agent-2's own\n")
    git("add", "own.txt", cwd=other)
    git("commit", "-q", "-m", "agent-2's own", cwd=other)
    source = gitxact("land", "gitxact/agent-2", "--onto", "main", cwd=repo, env={"GITXACT_AGENT": "agent-1"})
    assert source.returncode == 0, source.stderr
    assert git("show", "main:own.txt", cwd=repo) == "agent-2's own\n"
    own = gitxact("land", "main", "--onto", "gitxact/agent-2", cwd=other)  # from its worktree: it is agent-2
    assert own.returncode == 0, own.stderr
    assert (other / "feature.txt").read_text() == "agent-1's feature\n", "the owner's worktree followed"
    assert git("status", "--porcelain", cwd=other).strip() == "?? before.txt"
    git("fsck", "--no-progress", cwd=repo)  # exit 0: nothing broken (dangling objects are rebased-away copies)


def test_the_library_refuses_it_too(
    repo: Path, two: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Path(two["agent-2"]["path"])
    branch_before, worktree_before = git("rev-parse", A2, cwd=repo).strip(), fingerprint(other)
    for ws in (
        Workspace(repo, agent="agent-1"),
        Workspace(two["agent-1"]["path"]),  # the worktree says who acts
        Workspace(repo),  # nobody named: refused, it would still write into agent-2's worktree
    ):
        with pytest.raises(boundary.LeasedByOtherError) as refused:
            ws.land("gitxact/agent-1", onto="gitxact/agent-2")
        assert (refused.value.exit_code, refused.value.reason) == (EXIT_REFUSED, "leased_by_other")
    monkeypatch.setenv("GITXACT_LEASE_TOKEN", two["agent-1"]["token"])
    with pytest.raises(boundary.LeasedByOtherError):
        Workspace(repo).land("gitxact/agent-1", onto="gitxact/agent-2")
    assert git("rev-parse", A2, cwd=repo).strip() == branch_before
    assert fingerprint(other) == worktree_before


def test_the_landers_own_move_is_vetoed_by_the_hook(repo: Path, two: dict[str, dict[str, str]]) -> None:
    """The ref-update path alone, past the filing check: the hook refuses it for another agent."""
    common = Path(git("rev-parse", "--git-common-dir", cwd=repo).strip())
    common = common if common.is_absolute() else repo / common
    old = refs.read(common, A2)
    assert old is not None
    # A commit on top of agent-2's tip: a fast-forward, so only the boundary can stop it.
    tree = git("rev-parse", f"{old}^{{tree}}", cwd=repo).strip()
    new = git("commit-tree", tree, "-p", old, "-m", "agent-1's move", cwd=repo).strip()
    with pytest.raises(boundary.LeasedByOtherError) as vetoed:
        candidate.move_local(Workspace(repo, agent="agent-1"), "gitxact/agent-2", old, new, "gitxact land: test")
    assert "reference-transaction hook refused" in vetoed.value.message
    assert "GITXACT_AGENT='agent-1'" in vetoed.value.message
    assert refs.read(common, A2) == old
    # A push to this repository as "a remote" (which would update a checked-out branch with
    # updateInstead) is judged by the same hook on the receiving side.
    git("config", "receive.denyCurrentBranch", "updateInstead", cwd=repo)
    with pytest.raises(boundary.LeasedByOtherError):
        candidate.move_remote(Workspace(repo, agent="agent-1"), str(repo), "gitxact/agent-2", old, new)
    assert refs.read(common, A2) == old
    # The owner's own lander passes the same hook.
    candidate.move_local(Workspace(repo, agent="agent-2"), "gitxact/agent-2", old, new, "gitxact land: test")
    assert refs.read(common, A2) == new
