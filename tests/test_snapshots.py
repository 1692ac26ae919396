"""Snapshots and compare-and-swap refs on real repositories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.proc import git

from gitxact.git import snapshots
from gitxact.git.refs import MUST_NOT_EXIST, RefConflictError, RefUpdate, apply, list_refs, read


def layout(repo: Path) -> tuple[Path, Path]:
    return repo, repo / ".git"


def test_capture_and_restore_is_exact(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "tracked").write_text("one\n")
    (repo / "gone").write_text("bye\n")
    (repo / "tool.sh").write_text("#!/bin/sh\n")
    os.chmod(repo / "tool.sh", 0o755)
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "files", cwd=repo)
    # Uncommitted work of every kind.
    (repo / "tracked").write_text("one\nstaged\n")
    git("add", "tracked", cwd=repo)
    (repo / "tracked").write_text("one\nstaged\nunstaged\n")
    (repo / "untracked.txt").write_text("new\n")
    (repo / "dir").mkdir()
    (repo / "dir" / "nested.txt").write_text("nested\n")
    (repo / "gone").unlink()
    (repo / "debug.log").write_text("ignored\n")
    status_before = git("status", "--porcelain", cwd=repo)
    diff_cached_before = git("diff", "--cached", cwd=repo)

    snap = snapshots.capture(*layout(repo), "test snapshot")
    assert snap.head == git("rev-parse", "HEAD", cwd=repo).strip()
    assert snap.head_ref == "refs/heads/main"
    assert git("status", "--porcelain", cwd=repo) == status_before, "capturing changes nothing"

    # Mess everything up.
    (repo / "tracked").write_text("other\n")
    git("add", "tracked", cwd=repo)
    (repo / "untracked.txt").unlink()
    (repo / "created-later.txt").write_text("later\n")
    (repo / "gone").write_text("back?\n")
    (repo / "debug.log").write_text("ignored, changed later\n")
    os.chmod(repo / "tool.sh", 0o644)

    snapshots.restore_files(*layout(repo), snap)
    assert git("status", "--porcelain", cwd=repo) == status_before
    assert git("diff", "--cached", cwd=repo) == diff_cached_before
    assert (repo / "tracked").read_text() == "one\nstaged\nunstaged\n"
    assert (repo / "untracked.txt").read_text() == "new\n"
    assert (repo / "dir" / "nested.txt").read_text() == "nested\n"
    assert not (repo / "created-later.txt").exists()
    assert not (repo / "gone").exists()
    assert os.access(repo / "tool.sh", os.X_OK)
    assert (repo / "debug.log").read_text() == "ignored, changed later\n", "ignored files are left alone"

    again = snapshots.from_commit(repo, snap.commit)
    assert (again.commit, again.index_commit, again.head) == (snap.commit, snap.index_commit, snap.head)


def test_snapshot_on_unborn_branch(tmp_path: Path) -> None:
    repo = tmp_path / "fresh"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "a").write_text("a\n")
    snap = snapshots.capture(*layout(repo), "unborn")
    assert snap.head is None
    (repo / "a").unlink()
    (repo / "b").write_text("b\n")
    snapshots.restore_files(*layout(repo), snap)
    assert (repo / "a").read_text() == "a\n"
    assert not (repo / "b").exists()
    assert snapshots.from_commit(repo, snap.commit).head is None


def test_snapshot_refuses_conflicted_index(repo: Path) -> None:
    (repo / "f").write_text("base\n")
    git("add", "f", cwd=repo)
    git("commit", "-q", "-m", "base", cwd=repo)
    git("checkout", "-q", "-b", "other", cwd=repo)
    (repo / "f").write_text("other\n")
    git("commit", "-qam", "other", cwd=repo)
    git("checkout", "-q", "main", cwd=repo)
    (repo / "f").write_text("main\n")
    git("commit", "-qam", "main", cwd=repo)
    git("merge", "other", cwd=repo, check=False)
    with pytest.raises(Exception, match="merge conflicts"):
        snapshots.capture(*layout(repo), "conflict")


def test_compare_and_swap_refs(repo: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    apply(repo, [RefUpdate("refs/gitxact/test/a", head, MUST_NOT_EXIST)])
    assert read(repo, "refs/gitxact/test/a") == head
    with pytest.raises(RefConflictError):
        apply(repo, [RefUpdate("refs/gitxact/test/a", head, MUST_NOT_EXIST)])
    (repo / "x").write_text("x")
    git("add", "x", cwd=repo)
    git("commit", "-q", "-m", "x", cwd=repo)
    new = git("rev-parse", "HEAD", cwd=repo).strip()
    # All or nothing: the second update's expectation fails, so the first is not applied.
    with pytest.raises(RefConflictError):
        apply(repo, [RefUpdate("refs/gitxact/test/a", new, head), RefUpdate("refs/gitxact/test/b", new, new)])
    assert read(repo, "refs/gitxact/test/a") == head
    assert "refs/gitxact/test/b" not in list_refs(repo, "refs/gitxact/")
    apply(repo, [RefUpdate("refs/gitxact/test/a", None, head)])
    assert list_refs(repo, "refs/gitxact/") == {}
    with pytest.raises(Exception, match="invalid ref"):
        apply(repo, [RefUpdate("refs/gitxact/../../x", head, None)])
