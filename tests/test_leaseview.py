"""The lean lease reader (hooks, gx) sees exactly what gitxact.leases.records sees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import git

from gitxact import Workspace
from gitxact.errors import StateError
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases


def _same(repo: Path) -> None:
    ws = Workspace(repo)
    full = [(lease.agent, lease.path, lease.branch, lease.worktree_id) for lease in leases.active(ws)]
    lean = [
        (lease.agent, lease.path, lease.branch, lease.worktree_id) for lease in lease_reader.load(ws.layout.common_dir)
    ]
    assert lean == full


def test_no_file_no_leases(repo: Path) -> None:
    assert lease_reader.load(repo / ".git") == []
    assert not lease_reader.exists(repo / ".git")


def test_agrees_with_the_pydantic_reader(repo: Path) -> None:
    acquire(repo, "bob")
    acquire(repo, "alice")
    _same(repo)
    views = lease_reader.load(repo / ".git")
    assert [v.agent for v in views] == ["alice", "bob"]
    assert lease_reader.for_branch(views, "refs/heads/gitxact/bob") is views[1]
    assert lease_reader.for_path(views, views[0].path + "/sub/dir") is views[0]


def test_tampered_file_falls_back_to_its_backup_like_state_does(repo: Path) -> None:
    acquire(repo, "alice")
    acquire(repo, "bob")  # the previous generation (bob still being claimed) is now the .bak
    path = Path(lease_reader.leases_path(repo / ".git"))
    backup = json.loads(Path(str(path) + ".bak").read_text())
    assert backup["data"]["leases"]["bob"]["phase"] != "active"
    envelope = json.loads(path.read_text())
    envelope["data"]["leases"]["bob"]["branch"] = "gitxact/mallory"  # checksum no longer matches
    path.write_text(json.dumps(envelope))
    views = lease_reader.load(repo / ".git")
    assert [v.agent for v in views] == ["alice", "bob"]
    assert views[1].branch == "gitxact/bob", "the tampered generation is not believed"
    _same(repo)


def test_no_good_generation_names_the_file(repo: Path) -> None:
    acquire(repo, "alice")
    path = Path(lease_reader.leases_path(repo / ".git"))
    path.write_text("{ truncated")
    Path(str(path) + ".bak").unlink(missing_ok=True)
    with pytest.raises(StateError, match=r"leases\.json"):
        lease_reader.load(repo / ".git")


def test_both_readers_lookups_have_one_meaning(repo: Path) -> None:
    """The lean and the rich lookups answer alike: a genuine lease by path and by branch, and a
    well-formed record whose worktree lost gitxact's mark is no lease to either."""
    alice = acquire(repo, "alice")
    bob = acquire(repo, "bob")
    ws = Workspace(repo)
    views = lease_reader.load(ws.layout.common_dir)
    for path, branch in ((alice / "sub", "gitxact/alice"), (bob, "refs/heads/gitxact/bob")):
        lean, rich = lease_reader.for_path(views, str(path)), leases.for_path(ws, path)
        assert lean is not None
        assert rich is not None
        assert lean.agent == rich.agent
        by_branch = lease_reader.for_branch(views, branch)
        assert by_branch is not None
        assert by_branch.agent == getattr(leases.for_branch(ws, branch), "agent", None)
    admin = Path(git("rev-parse", "--absolute-git-dir", cwd=bob).strip())
    git("worktree", "unlock", str(bob), cwd=repo)
    (admin / lease_reader.MARK).unlink()  # bob's record is intact; its worktree no longer says so
    views = lease_reader.load(ws.layout.common_dir)
    assert lease_reader.for_path(views, str(bob)) is None
    assert leases.for_path(ws, bob) is None
    assert lease_reader.for_branch(views, "gitxact/bob") is None
    assert leases.for_branch(ws, "gitxact/bob") is None
    assert leases.for_agent(ws, "bob") is None
    assert leases.for_agent(ws, "alice") is not None
    _same(repo)  # the record itself is still there for reap and doctor
