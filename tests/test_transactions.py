"""Transactions on real repositories: exact rollback, savepoints, one per worktree, boundaries."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import assert_clean_error, git, gitxact
from support.tx import fingerprint, gitxact_refs, head, make_work

from fixtures.repos import make_repo
from gitxact import RefusedError, Workspace
from gitxact.leases.records import Lease, LeaseState, leases_file
from gitxact.tx.journal import JournalFile, commit_blocker


def test_rollback_restores_head_index_and_every_kind_of_file(repo: Path) -> None:
    make_work(repo)
    before = fingerprint(repo)
    ignored_before = (repo / "build.log").read_text()
    proc = gitxact("tx", "begin", "exact", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["name"] == "exact"
    assert doc["state"] == "open"
    assert fingerprint(repo) == before, "begin changes nothing"

    # Work inside the transaction: commits, staging, edits, deletions, new files.
    (repo / "feature.py").write_text("new\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "in the transaction", cwd=repo)
    (repo / "tracked.txt").write_text("changed again\n")
    (repo / "wip.txt").unlink()
    (repo / "created-later.txt").write_text("later\n")
    (repo / "later-dir").mkdir()
    (repo / "later-dir" / "deep.txt").write_text("deep\n")
    (repo / "README").write_text("other staged\n")
    git("add", "README", cwd=repo)
    (repo / "build.log").write_text("ignored, changed during the transaction\n")
    assert head(repo) != before["head"]

    proc = gitxact("tx", "rollback", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["closed"] is True
    assert fingerprint(repo) == before
    assert not (repo / "created-later.txt").exists()
    assert not (repo / "later-dir").exists()
    assert not (repo / "doomed.txt").exists(), "a file deleted before the savepoint stays deleted"
    assert (repo / "build.log").read_text() != ignored_before, "ignored files are left alone"
    assert gitxact_refs(repo) == [], "a closed transaction leaves no refs"
    assert git("fsck", "--no-progress", cwd=repo) is not None


def test_savepoints_detached_head_and_switched_branch(repo: Path) -> None:
    ws = Workspace(repo)
    start = head(repo)
    ws.transactions.begin()
    (repo / "a.txt").write_text("a\n")
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "a", cwd=repo)
    at_a = fingerprint(repo)
    ws.transactions.savepoint("after-a")
    # Detach, switch to a new branch, commit there, leave junk.
    git("checkout", "-q", "--detach", start, cwd=repo)
    git("checkout", "-q", "-b", "elsewhere", cwd=repo)
    (repo / "b.txt").write_text("b\n")
    git("add", "b.txt", cwd=repo)
    git("commit", "-q", "-m", "b", cwd=repo)
    _tx, sp, closed = ws.transactions.rollback("after-a")
    assert (sp.name, closed) == ("after-a", False)
    assert fingerprint(repo) == at_a
    assert git("symbolic-ref", "HEAD", cwd=repo).strip() == "refs/heads/main"
    assert git("rev-parse", "elsewhere", cwd=repo).strip() != start, "other branches are not part of a savepoint"
    # A savepoint taken while detached restores a detached HEAD.
    git("checkout", "-q", "--detach", "HEAD", cwd=repo)
    ws.transactions.savepoint("detached")
    git("checkout", "-q", "main", cwd=repo)
    (repo / "c.txt").write_text("c\n")
    git("add", "c.txt", cwd=repo)
    git("commit", "-q", "-m", "c", cwd=repo)
    ws.transactions.rollback("detached")
    assert git("symbolic-ref", "-q", "HEAD", cwd=repo, check=False) == ""
    assert head(repo) == at_a["head"]
    ws.transactions.rollback()
    assert head(repo) == start
    assert git("symbolic-ref", "HEAD", cwd=repo).strip() == "refs/heads/main"
    assert not (repo / "a.txt").exists()


def test_one_transaction_per_worktree_and_parallel_worktrees(repo: Path, tmp_path: Path) -> None:
    git("worktree", "add", "-q", str(tmp_path / "other"), "-b", "other", cwd=repo)
    assert gitxact("tx", "begin", "first", cwd=repo).returncode == 0
    second = gitxact("tx", "begin", "second", cwd=repo)
    assert_clean_error(second, 3)
    assert "first" in second.stderr
    assert "tx-" in second.stderr
    # Another worktree of the same repository has its own transaction.
    assert gitxact("tx", "begin", cwd=tmp_path / "other").returncode == 0
    listed = json.loads(gitxact("tx", "list", "--json", cwd=repo).stdout)["transactions"]
    assert sorted(t["worktree_id"] for t in listed) == ["main", "other"]
    assert {t["namespace"] for t in listed} == {"worktree@main", "worktree@other"}
    status = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    assert len(status["transactions"]) == 2
    assert gitxact("tx", "commit", cwd=repo).returncode == 0
    assert gitxact("tx", "commit", cwd=tmp_path / "other").returncode == 0
    assert_clean_error(gitxact("tx", "commit", cwd=repo), 1)


def test_bad_names_are_usage_errors(repo: Path) -> None:
    for bad in ["../x", "a/b", "-rf", ".x", "a..b", "x.lock", "sp ace", "@{-1}", "é"]:
        assert_clean_error(gitxact("tx", "begin", bad, cwd=repo), 2)
    assert gitxact_refs(repo) == []
    assert gitxact("tx", "begin", cwd=repo).returncode == 0
    for bad in ["start", "tdd-x", "../up", ""]:
        assert_clean_error(gitxact("tx", "savepoint", bad, cwd=repo), 2)
    assert gitxact("tx", "savepoint", "ok", cwd=repo).returncode == 0
    assert_clean_error(gitxact("tx", "savepoint", "ok", cwd=repo), 2)
    assert_clean_error(gitxact("tx", "rollback", "--to", "missing", cwd=repo), 2)


def test_context_manager_commits_or_rolls_back(repo: Path) -> None:
    ws = Workspace(repo)
    start = head(repo)
    with ws.transaction("kept") as tx:
        (repo / "kept.txt").write_text("kept\n")
        git("add", "kept.txt", cwd=repo)
        git("commit", "-q", "-m", "kept", cwd=repo)
        assert tx.is_open
    kept = head(repo)
    assert kept != start
    assert ws.transactions.current() is None

    def failing_block() -> None:
        with ws.transaction():
            (repo / "lost.txt").write_text("lost\n")
            git("add", "lost.txt", cwd=repo)
            git("commit", "-q", "-m", "lost", cwd=repo)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        failing_block()
    assert head(repo) == kept
    assert not (repo / "lost.txt").exists()
    assert ws.transactions.current() is None
    assert gitxact_refs(repo) == []


def test_savepoint_keep_then_expiry_by_recover(repo: Path) -> None:
    git("config", "gitxact.savepointKeep", "3600", cwd=repo)
    ws = Workspace(repo)
    ws.transactions.begin()
    ws.transactions.savepoint("mid")
    ws.transactions.commit()
    kept = gitxact_refs(repo)
    assert len(kept) == 4, "start and mid: savepoint + snapshot refs each"
    journal_file = JournalFile(ws, "main")
    with ws.worktree_lock():
        journal = journal_file.load()
        journal.kept[0].expires = time.time() - 1
        journal_file.write(journal)
    doc = json.loads(gitxact("recover", "--json", cwd=repo).stdout)
    step = next(s for s in doc["steps"] if s["name"] == "expired-savepoints")
    assert len(step["actions"]) == 4
    assert gitxact_refs(repo) == []


def test_unborn_branch(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a.txt").write_text("a\n")
    ws = Workspace(repo)
    ws.transactions.begin()
    git("add", "a.txt", cwd=repo)
    git("commit", "-q", "-m", "first", cwd=repo)
    (repo / "b.txt").write_text("b\n")
    ws.transactions.rollback()
    assert git("rev-parse", "-q", "--verify", "HEAD", cwd=repo, check=False) == ""
    assert git("status", "--porcelain", cwd=repo) == "?? a.txt\n"
    assert not (repo / "b.txt").exists()


def test_agent_boundaries_and_lease_namespace(repo: Path) -> None:
    here = acquire(repo, "alice")
    refused = gitxact("tx", "begin", cwd=here, env={"GITXACT_AGENT": "bob"})
    assert_clean_error(refused, 3)
    assert "alice" in refused.stderr
    assert gitxact("tx", "begin", cwd=here, env={"GITXACT_AGENT": "alice"}).returncode == 0
    assert all("/alice/tx-" in ref for ref in gitxact_refs(repo)), gitxact_refs(repo)
    assert_clean_error(gitxact("tx", "rollback", cwd=here, env={"GITXACT_AGENT": "bob"}), 3)
    assert gitxact("tx", "rollback", cwd=here, env={"GITXACT_AGENT": "alice"}).returncode == 0


def test_a_forged_lease_record_of_a_persons_worktree_is_no_lease(repo: Path) -> None:
    """A well-formed record naming ``main`` (no gitxact mark there) neither refuses nor names."""
    ws = Workspace(repo)
    ws.init()
    with ws.locks.resource("leases"):
        lease = Lease(
            agent="alice",
            path=str(repo),
            branch="refs/heads/main",
            base="main",
            token_hash="sha256:x",
            owner_pid=1,
            owner_host="h",
            created=time.time(),
            heartbeat=time.time(),
            ttl=3600,
        )
        leases_file(ws).save(LeaseState(leases={"alice": lease}))
    assert gitxact("tx", "begin", cwd=repo, env={"GITXACT_AGENT": "bob"}).returncode == 0
    assert gitxact_refs(repo)
    assert all("/worktree@main/tx-" in ref for ref in gitxact_refs(repo)), gitxact_refs(repo)
    assert gitxact("tx", "rollback", cwd=repo, env={"GITXACT_AGENT": "bob"}).returncode == 0


def test_commit_blocker_and_abandoned_journal(repo: Path) -> None:
    ws = Workspace(repo)
    assert commit_blocker(ws, "main") is None
    crashed = gitxact("tx", "begin", cwd=repo, env={"GITXACT_TEST_CRASH_AFTER_STEP": "1"})
    assert crashed.returncode == -9
    reason = commit_blocker(ws, "main")
    assert reason is not None
    assert "recover" in reason
    refused = gitxact("tx", "begin", cwd=repo)
    assert_clean_error(refused, 3)
    assert "gitxact recover" in refused.stderr
    with pytest.raises(RefusedError):
        ws.transactions.begin()
    assert gitxact("recover", cwd=repo).returncode == 0
    assert commit_blocker(ws, "main") is None
    assert gitxact_refs(repo) == []
    assert gitxact("tx", "begin", cwd=repo).returncode == 0


def test_status_shows_transactions_and_survives_a_damaged_journal(repo: Path) -> None:
    assert gitxact("tx", "begin", "shown", cwd=repo).returncode == 0
    human = gitxact("status", cwd=repo)
    assert human.returncode == 0
    assert "transactions" in human.stdout
    assert "(shown)" in human.stdout
    assert "savepoint start" in human.stdout
    listed = gitxact("tx", "list", cwd=repo)
    assert "open" in listed.stdout
    journal = repo / ".git" / "gitxact" / "state" / "journal-main.json"
    for path in (journal, journal.with_name(journal.name + ".bak")):
        path.write_text("{broken")
    status = json.loads(gitxact("status", "--json", cwd=repo).stdout)
    bad = next(f for f in status["state_files"] if f["name"] == "journal-main.json")
    assert bad["ok"] is False
    assert status["transactions"] == []
    proc = gitxact("recover", "--json", cwd=repo)
    assert_clean_error(proc, 1)
    problems = [p for s in json.loads(proc.stdout)["steps"] for p in s["problems"]]
    assert any("journal-main.json" in p for p in problems), problems


def test_commit_blocker_while_a_live_process_rolls_back(repo: Path) -> None:
    from gitxact.tx.journal import Owner, Step

    ws = Workspace(repo)
    ws.transactions.begin()
    journal_file = JournalFile(ws, "main")
    with ws.worktree_lock():
        journal = journal_file.load()
        assert journal.tx is not None
        journal.tx.step = Step(
            op="rollback", phase="restore", owner=Owner.current(None, "test"), started=time.time(), target="start"
        )
        journal_file.write(journal)
    reason = commit_blocker(ws, "main")
    assert reason is not None
    assert "rolling back" in reason
    assert_clean_error(gitxact("tx", "commit", cwd=repo), 3)  # busy: a live process is in a step
    with ws.worktree_lock():
        journal = journal_file.load()
        assert journal.tx is not None
        journal.tx.step = None
        journal_file.write(journal)
    assert commit_blocker(ws, "main") is None


def test_a_transaction_says_what_it_cannot_restore_in_submodules(repo: Path, tmp_path: Path) -> None:
    sub = make_repo(tmp_path / "sub")
    git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "sub", cwd=repo)
    git("commit", "-q", "-m", "add sub", cwd=repo)
    (repo / "sub" / "README").write_text("edited\n")
    refused = gitxact("tx", "begin", cwd=repo)
    assert_clean_error(refused, 3)
    assert "submodule sub has uncommitted changes" in refused.stderr
    (repo / "sub" / "README").write_text("hello\n")
    assert gitxact("tx", "begin", cwd=repo).returncode == 0
    (repo / "sub" / "README").write_text("changed inside\n")
    rolled = gitxact("tx", "rollback", cwd=repo)
    assert rolled.returncode == 0, rolled.stderr
    assert "submodule sub was changed inside the transaction" in rolled.stderr
