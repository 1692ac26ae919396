"""``gitxact land``: the transaction of one landing, on real git, one process at a time.

The user's story: an agent's branch lands onto ``main`` (checked out in the main
worktree) rebased or merged, checked in a private worktree, the target moved by
compare-and-swap; a conflict or a failing check is refused with the target untouched
and the queue goes on; a target moved outside the queue is built and checked again.
Concurrency, remotes, batches and kills are in ``test_land_queue.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.proc import assert_clean_error, git, gitxact

from gitxact import Workspace
from gitxact.land.records import LandingFile, queue_name
from gitxact.land.results import LandRefusedError

# Every story here runs on the file backend and on PostgreSQL (the queue then in the database),
# but those about git alone (merge commits, a checked-out worktree's files, argument checks).
pytestmark = pytest.mark.usefixtures("backend")
files_only = pytest.mark.parametrize("backend", ["files"], indirect=True)


def commit(repo: Path, name: str, text: str, message: str) -> str:
    (repo / name).write_text(text)
    git("add", name, cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)
    return git("rev-parse", "HEAD", cwd=repo).strip()


def branch_with(repo: Path, branch: str, name: str, text: str, *, start: str = "main") -> str:
    """A branch with one commit, made without touching the main worktree (a temporary worktree)."""
    where = repo.parent / f"wt-{branch}"
    git("worktree", "add", "-q", "-b", branch, str(where), start, cwd=repo)
    tip = commit(where, name, text, f"{branch}: {name}")
    git("worktree", "remove", str(where), cwd=repo)
    return tip


def tip_of(repo: Path, ref: str) -> str:
    return git("rev-parse", ref, cwd=repo).strip()


def assert_nothing_left(repo: Path) -> None:
    """No temporary worktree, no fetched ref, no step in progress."""
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("worktree ")) == 2, git(
        "worktree", "list", cwd=repo
    )
    assert git("for-each-ref", "refs/gitxact/land/", cwd=repo) == ""
    land_dir = repo / ".git" / "gitxact" / "land"
    assert not land_dir.exists() or not list(land_dir.iterdir())
    assert LandingFile(Workspace(repo)).peek().work == []


def test_rebase_lands_linear_and_the_main_worktree_follows(repo: Path) -> None:
    feature = branch_with(repo, "feature", "feature.txt", "new\n")
    commit(repo, "other.txt", "moved on\n", "main moved on")
    before = tip_of(repo, "main")
    doc = Workspace(repo).land("feature", onto="main", check="test -f feature.txt")
    after = tip_of(repo, "main")
    assert doc.state == "landed"
    assert doc.landed_tip == after
    assert git("rev-parse", f"{after}~1", cwd=repo).strip() == before, "one commit on top: linear"
    assert git("rev-list", "--merges", f"{before}..{after}", cwd=repo) == ""
    assert doc.commits == [after]
    assert tip_of(repo, "feature") == feature, "the agent's branch is never moved"
    assert (repo / "feature.txt").read_text() == "new\n", "the worktree that has main checked out follows it"
    assert git("status", "--porcelain", cwd=repo) == ""
    assert_nothing_left(repo)


@files_only
def test_merge_strategy_makes_a_merge_commit_containing_the_branch(repo: Path) -> None:
    feature = branch_with(repo, "feature", "feature.txt", "new\n")
    commit(repo, "other.txt", "moved on\n", "main moved on")
    doc = Workspace(repo).land("feature", onto="main", strategy="merge")
    parents = git("rev-list", "--parents", "-n1", "main", cwd=repo).split()
    assert parents[2] == feature
    assert doc.landed_tip == parents[0]
    assert git("merge-base", "--is-ancestor", "feature", "main", cwd=repo, check=False) == ""


def test_a_branch_already_on_the_target_lands_as_is(repo: Path) -> None:
    feature = branch_with(repo, "feature", "feature.txt", "new\n")
    doc = Workspace(repo).land("feature", onto="main")
    assert doc.landed_tip == feature, "a fast-forward keeps the branch's own commits"
    again = Workspace(repo).land("feature", onto="main")
    assert again.already
    assert tip_of(repo, "main") == feature


def test_a_conflict_is_refused_naming_the_paths_and_the_queue_moves_on(repo: Path) -> None:
    branch_with(repo, "clash", "README", "theirs\n")
    branch_with(repo, "fine", "fine.txt", "fine\n")
    commit(repo, "README", "ours\n", "main changes README")
    before = tip_of(repo, "main")
    proc = gitxact("land", "clash", "--onto", "main", cwd=repo)
    assert_clean_error(proc, 3)
    assert "README" in proc.stderr
    assert "conflicts" in proc.stderr
    assert tip_of(repo, "main") == before
    assert_nothing_left(repo)
    ok = gitxact("land", "fine", "--onto", "main", "--json", cwd=repo)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["state"] == "landed"
    assert (repo / "fine.txt").exists()


def test_a_failing_check_is_refused_with_its_log_kept(repo: Path) -> None:
    branch_with(repo, "broken", "broken.txt", "oops\n")
    before = tip_of(repo, "main")
    proc = gitxact(
        "land",
        "broken",
        "--onto",
        "main",
        "--shell",
        "--check",
        "echo checking; test ! -f broken.txt",
        "--json",
        cwd=repo,
    )
    assert_clean_error(proc, 3)
    doc = json.loads(proc.stdout)
    assert doc["state"] == "refused"
    assert "checking" in Path(doc["check_log"]).read_text()
    assert tip_of(repo, "main") == before
    assert_nothing_left(repo)
    with pytest.raises(LandRefusedError) as refused:
        Workspace(repo).land("broken", onto="main", check="false")
    assert refused.value.doc.check_log is not None


def test_a_target_moved_outside_the_queue_is_built_and_checked_again(repo: Path, tmp_path: Path) -> None:
    """The check itself moves main once (someone committing outside the queue): the first
    candidate must not land; the second, built on the new tip, is checked and lands."""
    branch_with(repo, "feature", "feature.txt", "new\n")
    runs = tmp_path / "runs"
    script = tmp_path / "check.sh"
    script.write_text(
        "set -e\n"
        f"git rev-parse HEAD >> {runs}\n"
        f"if [ ! -f {tmp_path}/moved ]; then touch {tmp_path}/moved;"
        " c=$(git commit-tree 'main^{tree}' -p main -m outside); git update-ref refs/heads/main $c; fi\n"
    )
    doc = Workspace(repo).land("feature", onto="main", check=f"sh {script}")
    checked = runs.read_text().split()
    assert len(checked) == 2
    assert doc.attempts == 2
    assert checked[1] == doc.landed_tip == tip_of(repo, "main"), "what landed is what the second check ran on"
    assert git("log", "-1", "--format=%s", "main~1", cwd=repo).strip() == "outside", "the outside commit is kept"
    assert git("status", "--porcelain", cwd=repo) == ""


@files_only
def test_uncommitted_work_where_main_is_checked_out_is_kept_or_the_landing_refused(repo: Path) -> None:
    branch_with(repo, "touches-readme", "README", "landed\n")
    branch_with(repo, "elsewhere", "new.txt", "new\n")
    (repo / "README").write_text("my unsaved edit\n")
    before = tip_of(repo, "main")
    with pytest.raises(LandRefusedError, match="uncommitted changes"):
        Workspace(repo).land("touches-readme", onto="main")
    assert tip_of(repo, "main") == before
    assert (repo / "README").read_text() == "my unsaved edit\n"
    Workspace(repo).land("elsewhere", onto="main")
    assert (repo / "new.txt").read_text() == "new\n"
    assert (repo / "README").read_text() == "my unsaved edit\n", "carried along, like git checkout"
    assert git("status", "--porcelain", cwd=repo) == " M README\n"


@files_only
def test_bad_input_is_a_usage_error(repo: Path) -> None:
    assert_clean_error(gitxact("land", "nope", "--onto", "main", cwd=repo), 2)
    assert_clean_error(gitxact("land", "main", cwd=repo), 2)  # no --onto
    assert_clean_error(gitxact("land", "main", "--onto", "main", cwd=repo), 2)
    assert_clean_error(gitxact("land", "main", "--onto", "-x", cwd=repo), 2)
    assert_clean_error(gitxact("land", "--onto", "main", cwd=repo), 2)  # main checked out here: onto itself
    git("branch", "b", cwd=repo)
    assert_clean_error(gitxact("land", "b", "--onto", "main", "--check", "'unclosed", cwd=repo), 2)
    assert_clean_error(gitxact("land", "b", "--onto", "nosuch", cwd=repo), 3)


def test_status_shows_the_queue(repo: Path, backend: str) -> None:
    branch_with(repo, "feature", "feature.txt", "new\n")
    Workspace(repo).land("feature", onto="main")
    proc = gitxact("land", "--status", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    queues = json.loads(proc.stdout)["queues"]
    # On PostgreSQL a local target's queue carries the clone's identity: clones' mains differ.
    clone = None
    if backend == "postgresql":
        from gitxact.land.shared import clone_id

        clone = clone_id(Workspace(repo))
    assert [q["queue"] for q in queues] == [queue_name("main", None, clone=clone)]
    assert (queues[0]["queue"] == "land.main") == (backend == "files")
    assert [r["state"] for r in queues[0]["recent"]] == ["landed"]
    text = gitxact("land", "--status", cwd=repo)
    assert "landed   feature" in text.stdout


def test_the_default_branch_is_the_agents_leased_branch(repo: Path) -> None:
    ws = Workspace(repo, agent="agent-1")
    wt = Path(ws.worktrees.acquire("agent-1", owner_pid=os.getpid()).path)
    commit(wt, "a1.txt", "a1\n", "agent-1 work")
    (wt / "scratch.txt").write_text("uncommitted\n")
    proc = gitxact("land", "--onto", "main", "--json", cwd=repo, env={"GITXACT_AGENT": "agent-1"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["branch"] == "gitxact/agent-1"
    assert (repo / "a1.txt").exists()
    assert (wt / "scratch.txt").read_text() == "uncommitted\n", "the agent's worktree is never touched"
    assert git("status", "--porcelain", cwd=wt) == "?? scratch.txt\n"
