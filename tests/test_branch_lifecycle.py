"""Branches leases leave behind (issue 15): a reused agent name, listing and pruning them."""

from __future__ import annotations

import json
from pathlib import Path

from support.proc import assert_clean_error, git, gitxact


def _left_behind(repo: Path) -> str:
    """Agent a's branch with one commit of its own, released with the branch kept; main moves on."""
    assert gitxact("init", cwd=repo).returncode == 0
    doc = json.loads(gitxact("worktree", "acquire", "a", "--json", cwd=repo).stdout)
    wt = Path(doc["path"])
    (wt / "work.txt").write_text("agent work\n")
    git("add", "work.txt", cwd=wt)
    git("commit", "-q", "-m", "agent work", cwd=wt)
    assert gitxact("worktree", "release", "a", "--force", "--keep-branch", cwd=repo).returncode == 0
    git("commit", "-q", "--allow-empty", "-m", "main moves on", cwd=repo)
    return git("rev-parse", "gitxact/a", cwd=repo).strip()


def test_a_stale_branch_is_refused_without_resume_or_fresh(repo: Path) -> None:
    old = _left_behind(repo)
    proc = gitxact("worktree", "acquire", "a", cwd=repo)
    assert_clean_error(proc, 3)
    assert "1 commit(s) not on" in proc.stderr
    assert "1 commit(s) behind" in proc.stderr
    assert "--resume" in proc.stderr
    assert "--fresh" in proc.stderr
    assert git("rev-parse", "gitxact/a", cwd=repo).strip() == old, "a refusal changes nothing"


def test_resume_and_fresh_together_is_a_usage_error(repo: Path) -> None:
    old = _left_behind(repo)
    proc = gitxact("worktree", "acquire", "a", "--resume", "--fresh", cwd=repo)
    assert_clean_error(proc, 2)
    assert "contradict" in proc.stderr
    assert git("rev-parse", "gitxact/a", cwd=repo).strip() == old


def test_resume_continues_on_the_old_branch(repo: Path) -> None:
    old = _left_behind(repo)
    doc = json.loads(gitxact("worktree", "acquire", "a", "--resume", "--json", cwd=repo).stdout)
    assert (doc["reused"], doc["branch_ahead"], doc["branch_behind"]) == ("resume", 1, 1)
    assert (Path(doc["path"]) / "work.txt").exists()
    assert git("rev-parse", "gitxact/a", cwd=repo).strip() == old
    text = gitxact("worktree", "acquire", "a", cwd=repo).stdout
    assert "this lease's" in text, "asking again shows the existing lease, not a new branch"
    assert "new, from" not in text


def test_fresh_starts_from_the_base_and_keeps_the_old_commits(repo: Path) -> None:
    old = _left_behind(repo)
    doc = json.loads(gitxact("worktree", "acquire", "a", "--fresh", "--json", cwd=repo).stdout)
    assert doc["reused"] == "fresh"
    kept = doc["kept_branch"]
    assert kept.startswith("gitxact/a-")
    assert git("rev-parse", kept, cwd=repo).strip() == old, "no commit lost"
    assert git("rev-parse", "gitxact/a", cwd=repo).strip() == git("rev-parse", "main", cwd=repo).strip()
    assert not (Path(doc["path"]) / "work.txt").exists()
    git("fsck", "--strict", cwd=repo)


def test_an_up_to_date_branch_is_simply_used(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    git("branch", "gitxact/b", cwd=repo)
    doc = json.loads(gitxact("worktree", "acquire", "b", "--json", cwd=repo).stdout)
    assert (doc["branch_ahead"], doc["branch_behind"], doc["reused"]) == (0, 0, None)


def test_list_branches_and_prune_only_the_merged(repo: Path) -> None:
    _left_behind(repo)
    git("branch", "gitxact/merged-one", "main~1", cwd=repo)  # its commits are on main
    listed = json.loads(gitxact("worktree", "list", "--branches", "--json", cwd=repo).stdout)
    state = {b["branch"]: (b["merged"], b["rule"]) for b in listed["branches"]}
    assert state == {"gitxact/a": (False, None), "gitxact/merged-one": (True, "merged")}
    dry = json.loads(gitxact("worktree", "prune-branches", "--dry-run", "--json", cwd=repo).stdout)
    assert dry["deleted"] == ["gitxact/merged-one"]
    assert git("rev-parse", "--verify", "-q", "gitxact/merged-one", cwd=repo).strip(), "dry run deletes nothing"
    done = json.loads(gitxact("worktree", "prune-branches", "--merged", "--json", cwd=repo).stdout)
    assert done["deleted"] == ["gitxact/merged-one"]
    assert "gitxact/a" in done["kept"]
    assert git("branch", "--list", "gitxact/*", cwd=repo).split() == ["gitxact/a"]


def test_a_branch_only_behind_the_base_moves_up_to_it_without_a_flag(repo: Path) -> None:
    """No commit of its own (issue 24: it is integrated, "merged"): nothing to lose, nothing to ask."""
    assert gitxact("init", cwd=repo).returncode == 0
    git("branch", "gitxact/b", cwd=repo)
    git("commit", "-q", "--allow-empty", "-m", "main moves on", cwd=repo)
    doc = json.loads(gitxact("worktree", "acquire", "b", "--json", cwd=repo).stdout)
    assert (doc["branch_ahead"], doc["branch_behind"], doc["reused"]) == (0, 1, "fresh")
    assert doc["branch_integrated"] == "merged into main"
    assert doc["kept_branch"] is None
    assert git("rev-parse", "gitxact/b", cwd=repo).strip() == git("rev-parse", "main", cwd=repo).strip()
