"""The pre-commit hook refuses a raw `git commit` while a transaction is mid-rollback or
waits for `gitxact recover`; its lean reader agrees with the journal model."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from support.proc import GITXACT, git, gitxact

from gitxact import Workspace
from gitxact.tx import journal_reader
from gitxact.tx.journal import commit_blocker


def rollback_killed_midway(repo: Path) -> None:
    Workspace(repo).transactions.begin()
    (repo / "feature.txt").write_text("in the transaction\n")
    git("add", "feature.txt", cwd=repo)
    git("commit", "-q", "-m", "feature", cwd=repo)
    proc = subprocess.run(
        [*GITXACT, "tx", "rollback"],
        cwd=repo,
        env={**os.environ, "GITXACT_TEST_CRASH_AFTER_STEP": "1"},
        capture_output=True,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL


def test_commit_refused_until_recover(repo: Path) -> None:
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    common = str(repo / ".git")
    assert journal_reader.commit_blocker(common, "main") is None, "no journal: nothing blocks"
    rollback_killed_midway(repo)
    ws = Workspace(repo)
    reason = commit_blocker(ws, "main")
    assert reason is not None
    assert "recover" in reason
    assert journal_reader.commit_blocker(common, "main") == reason, "the hook's reader agrees with the model"
    (repo / "other.txt").write_text("x\n")
    git("add", "other.txt", cwd=repo)
    proc = subprocess.run(
        ["git", "commit", "-q", "-m", "sneaky"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert proc.returncode != 0
    assert "gitxact recover" in proc.stderr
    assert gitxact("recover", cwd=repo).returncode == 0
    assert journal_reader.commit_blocker(common, "main") is None
    git("add", "other.txt", cwd=repo, check=False)
    git("commit", "-q", "--allow-empty", "-m", "fine now", cwd=repo)


def test_open_transaction_does_not_block_commits(repo: Path) -> None:
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    assert gitxact("tx", "begin", cwd=repo).returncode == 0
    assert journal_reader.commit_blocker(str(repo / ".git"), "main") is None
    git("commit", "-q", "--allow-empty", "-m", "inside the transaction", cwd=repo)
    assert gitxact("tx", "commit", cwd=repo).returncode == 0
