"""Leased worktrees as a user meets them: acquire, release, renew, list, on real git.

The tests taking ``backend_repo`` run on both coordination backends: on PostgreSQL every
lease is also a claim in the fleet's registry, which must follow it exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.leases import acquire_json
from support.proc import assert_clean_error, git, gitxact

from fixtures.hostile import HOSTILE_NAMES
from gitxact import Workspace
from gitxact.errors import InvalidNameError, RefusedError
from gitxact.git import snapshots


def porcelain(repo: Path) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    for block in git("worktree", "list", "--porcelain", cwd=repo).split("\n\n"):
        if block.strip():
            record = {}
            for line in block.splitlines():
                key, _, value = line.partition(" ")
                record[key] = value
            records.append(record)
    return records


def fleet_claims(repo: Path) -> list[tuple[str, str]] | None:
    """(agent, branch) of every claim in the fleet's registry; ``None`` on the file backend."""
    proc = gitxact("worktree", "list", "--all-hosts", "--json", cwd=repo)
    if proc.returncode == 2:
        return None
    assert proc.returncode == 0, proc.stderr
    return [(c["agent"], c["branch"]) for c in json.loads(proc.stdout)["claims"]]


def branches(repo: Path) -> set[str]:
    return set(git("for-each-ref", "--format=%(refname)", "refs/heads/", cwd=repo).split())


def test_acquire_creates_a_locked_worktree_on_its_own_branch(repo: Path) -> None:
    doc = acquire_json(repo, "agent-7")
    path = Path(str(doc["path"]))
    assert path == repo.parent / "repo.worktrees" / "agent-7"
    assert doc["branch"] == "gitxact/agent-7"
    assert doc["base"] == "main"
    assert doc["existing"] is False
    assert isinstance(doc["token"], str)
    assert len(str(doc["token"])) >= 40
    assert doc["owner_pid"] == os.getpid(), "the CLI records its parent as the owner"
    assert git("symbolic-ref", "HEAD", cwd=path).strip() == "refs/heads/gitxact/agent-7"
    entry = next(r for r in porcelain(repo) if r["worktree"] == str(path))
    assert entry["locked"].startswith("gitxact lease agent-7")
    state = (repo / ".git" / "gitxact" / "state" / "leases.json").read_text()
    assert str(doc["token"]) not in state, "only the token's hash is stored"


def test_acquire_again_returns_the_same_lease_without_the_token(backend_repo: Path) -> None:
    repo = backend_repo
    first = acquire_json(repo, "a")
    again = acquire_json(repo, "a")
    assert again["path"] == first["path"]
    assert again["existing"] is True
    assert again["token"] is None, "a secret is not handed to whoever asks"
    presented = acquire_json(repo, "a", "--token", str(first["token"]))
    assert presented["token"] == first["token"]
    assert len(porcelain(repo)) == 2
    assert_clean_error(gitxact("worktree", "acquire", "a", "--branch", "other", cwd=repo), 3)
    assert fleet_claims(repo) in (None, [("a", "gitxact/a")])


def test_base_and_branch_options(repo: Path) -> None:
    first = git("rev-parse", "HEAD", cwd=repo).strip()
    (repo / "f").write_text("x\n")
    git("add", "f", cwd=repo)
    git("commit", "-q", "-m", "second", cwd=repo)
    doc = acquire_json(repo, "b", "--base", first, "--branch", "feature/b")
    assert doc["branch"] == "feature/b"
    assert doc["base"] == first, "a detached base is recorded as its commit"
    assert git("rev-parse", "HEAD", cwd=Path(str(doc["path"]))).strip() == first
    assert_clean_error(gitxact("worktree", "acquire", "c", "--base", "no-such-ref", cwd=repo), 2)


def test_a_path_that_exists_is_never_reused(repo: Path) -> None:
    root = repo.parent / "repo.worktrees"
    (root / "a").mkdir(parents=True)
    (root / "a" / "someone-elses.txt").write_text("keep me\n")
    doc = acquire_json(repo, "a")
    assert doc["path"] == str(root / "a-2")
    assert (root / "a" / "someone-elses.txt").read_text() == "keep me\n"


def test_symlinked_worktree_root_is_refused(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "repo.worktrees").symlink_to(tmp_path / "elsewhere")
    proc = gitxact("worktree", "acquire", "a", cwd=repo)
    assert_clean_error(proc, 2)
    assert "symbolic link" in proc.stderr
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_configured_root_and_prefix(repo: Path, tmp_path: Path) -> None:
    git("config", "gitxact.worktreeRoot", str(tmp_path / "agents"), cwd=repo)
    git("config", "gitxact.branchPrefix", "bots/", cwd=repo)
    doc = acquire_json(repo, "a")
    assert doc["path"] == str(tmp_path / "agents" / "a")
    assert doc["branch"] == "bots/a"


def test_branch_checked_out_elsewhere_is_refused_naming_where(repo: Path) -> None:
    proc = gitxact("worktree", "acquire", "a", "--branch", "main", cwd=repo)
    assert_clean_error(proc, 3)
    assert str(repo) in proc.stderr
    first = acquire_json(repo, "a")
    proc = gitxact("worktree", "acquire", "b", "--branch", "gitxact/a", cwd=repo)
    assert_clean_error(proc, 3)
    assert str(first["path"]) in proc.stderr
    assert "'a'" in proc.stderr
    assert not (repo.parent / "repo.worktrees" / "b").exists()


def snapshot_of_everything(repo: Path) -> tuple[object, ...]:
    gitxact_dir = repo / ".git" / "gitxact"
    state = sorted(str(p.relative_to(gitxact_dir)) for p in gitxact_dir.rglob("*")) if gitxact_dir.exists() else None
    return (
        sorted(p.name for p in repo.parent.iterdir()),
        sorted(p.name for p in repo.iterdir()),
        branches(repo),
        git("worktree", "list", "--porcelain", cwd=repo),
        state,
    )


def test_hostile_agent_names_create_nothing(repo: Path) -> None:
    gitxact("init", cwd=repo)
    before = snapshot_of_everything(repo)
    for name in HOSTILE_NAMES:
        proc = gitxact("worktree", "acquire", "--", name, cwd=repo)
        assert_clean_error(proc, 2)
        assert "invalid agent name" in proc.stderr, (name, proc.stderr)
    for name in HOSTILE_NAMES[:3]:
        for command in ("release", "renew"):
            assert_clean_error(gitxact("worktree", command, "--force", "--", name, cwd=repo), 2)
    ws = Workspace(repo)
    for name in HOSTILE_NAMES:
        for call in (ws.worktrees.acquire, ws.worktrees.release, ws.worktrees.renew):
            with pytest.raises(InvalidNameError):
                call(name)
    assert snapshot_of_everything(repo) == before
    assert not (repo.parent / "repo.worktrees").exists()


def test_hostile_branch_and_base_create_nothing(repo: Path) -> None:
    before = snapshot_of_everything(repo)
    for name in ["../x", "-x", "a..b", "@{-1}", "HEAD", "refs/heads/x", "a b", "x.lock", "a\nb", "", "a~1", "/a"]:
        assert_clean_error(gitxact("worktree", "acquire", "ok", f"--branch={name}", cwd=repo), 2)
    for base in ["nope", "-x", "HEAD@{99}", "a\nb", "", "--all"]:
        assert_clean_error(gitxact("worktree", "acquire", "ok", f"--base={base}", cwd=repo), 2)
    assert_clean_error(gitxact("worktree", "acquire", "ok", "--owner-pid", "999999999", cwd=repo), 2)
    assert snapshot_of_everything(repo) == before


def test_release_needs_the_token(backend_repo: Path) -> None:
    repo = backend_repo
    doc = acquire_json(repo, "a")
    for args in ([], ["--token", "wrong"], ["--token", ""]):
        assert_clean_error(gitxact("worktree", "release", "a", *args, cwd=repo), 3)
        assert_clean_error(gitxact("worktree", "renew", "a", *args, cwd=repo), 3)
    assert Path(str(doc["path"])).is_dir(), "lease intact"
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"][0]["agent"] == "a"
    assert fleet_claims(repo) in (None, [("a", "gitxact/a")]), "the claim intact too"
    proc = gitxact("worktree", "release", "a", cwd=repo, env={"GITXACT_LEASE_TOKEN": str(doc["token"])})
    assert proc.returncode == 0, proc.stderr
    assert not Path(str(doc["path"])).exists()
    assert "refs/heads/gitxact/a" not in branches(repo), "an untouched branch is merged: deleted"
    assert fleet_claims(repo) in (None, []), "the claim ended with the lease"
    assert_clean_error(gitxact("worktree", "release", "a", "--force", cwd=repo), 1)


def test_release_refuses_dirty_work_and_force_saves_it(repo: Path, tmp_path: Path) -> None:
    doc = acquire_json(repo, "a")
    path = Path(str(doc["path"]))
    (path / "README").write_text("changed\n")
    (path / "new.txt").write_text("untracked work\n")
    proc = gitxact("worktree", "release", "a", "--token", str(doc["token"]), cwd=repo)
    assert_clean_error(proc, 3)
    assert (path / "new.txt").exists()
    proc = gitxact("worktree", "release", "a", "--force", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    ref = out["snapshot_ref"]
    assert ref.startswith("refs/gitxact/snapshots/a/")
    assert not path.exists()
    # The snapshot restores the work exactly, in a fresh worktree.
    snap = snapshots.from_commit(repo, ref)
    restored = tmp_path / "restored"
    git("worktree", "add", "-q", "--detach", str(restored), str(snap.head), cwd=repo)
    snapshots.restore_files(restored, repo / ".git" / "worktrees" / "restored", snap)
    assert (restored / "README").read_text() == "changed\n"
    assert (restored / "new.txt").read_text() == "untracked work\n"
    assert "Traceback" not in proc.stderr


def test_release_keeps_a_branch_with_unmerged_commits(repo: Path) -> None:
    doc = acquire_json(repo, "a")
    path = Path(str(doc["path"]))
    (path / "work.txt").write_text("done\n")
    git("add", "work.txt", cwd=path)
    git("commit", "-q", "-m", "agent work", cwd=path)
    proc = gitxact("worktree", "release", "a", "--token", str(doc["token"]), cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "kept" in proc.stdout
    assert "refs/heads/gitxact/a" in branches(repo)
    # Acquiring again resumes that branch in a fresh worktree, when asked to (it is unmerged).
    assert_clean_error(gitxact("worktree", "acquire", "a", cwd=repo), 3)
    again = acquire_json(repo, "a", "--resume")
    assert again["branch_created"] is False
    assert (again["reused"], again["branch_ahead"], again["branch_behind"]) == ("resume", 1, 0)
    assert (Path(str(again["path"])) / "work.txt").read_text() == "done\n"
    # Once merged, release deletes it; --keep-branch would not.
    git("merge", "-q", "--ff-only", "gitxact/a", cwd=repo)
    proc = gitxact("worktree", "release", "a", "--token", str(again["token"]), "--keep-branch", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "refs/heads/gitxact/a" in branches(repo)


def test_renew_moves_the_heartbeat(backend_repo: Path) -> None:
    repo = backend_repo
    doc = acquire_json(repo, "a")
    before = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"][0]["heartbeat"]
    proc = gitxact("worktree", "renew", "a", "--token", str(doc["token"]), "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["heartbeat"] >= before
    fleet = gitxact("worktree", "list", "--all-hosts", "--json", cwd=repo)
    if fleet.returncode == 0:  # PostgreSQL: the claim was renewed with the lease
        [claim] = json.loads(fleet.stdout)["claims"]
        assert (claim["agent"], claim["expired"], claim["pid"]) == ("a", False, os.getpid())


def test_list_and_status_show_leases_but_never_a_token(backend_repo: Path) -> None:
    repo = backend_repo
    doc = acquire_json(repo, "a")
    path = Path(str(doc["path"]))
    (path / "x").write_text("x\n")
    git("add", "x", cwd=path)
    git("commit", "-q", "-m", "ahead", cwd=path)
    (path / "dirty").write_text("d\n")
    listing = gitxact("worktree", "list", "--json", cwd=repo)
    item = json.loads(listing.stdout)["leases"][0]
    assert item["owner"] == {"pid": os.getpid(), "host": item["owner"]["host"], "alive": True}
    assert (item["dirty"], item["ahead"], item["behind"]) == (True, 1, 0)
    assert (item["folder_missing"], item["locked"], item["live"]) == (False, True, True)
    human = gitxact("worktree", "list", "--dirty", cwd=repo)
    assert "dirty" in human.stdout
    assert gitxact("worktree", "list", "--no-dirty", "--json", cwd=repo).stdout.count('"dirty": null') == 1
    status = gitxact("status", "--json", cwd=repo)
    assert json.loads(status.stdout)["leases"][0]["agent"] == "a"
    for out in (listing.stdout, human.stdout, status.stdout, gitxact("status", cwd=repo).stdout):
        assert str(doc["token"]) not in out
        assert "sha256:" not in out
        assert "token" not in out


def test_library_lease_releases_on_exit_and_saves_dirty_work(repo: Path) -> None:
    ws = Workspace(repo)
    with ws.worktrees.lease("agent-7") as wt:
        assert wt.path.is_dir()
        assert wt.branch == "gitxact/agent-7"
        assert ws.worktrees.list().leases[0].owner.pid == os.getpid()
        (wt.path / "notes.txt").write_text("unfinished\n")
        with pytest.raises(RefusedError), ws.worktrees.lease("agent-7"):  # a second lease for the agent
            pass
    assert not wt.path.exists()
    assert wt.released is not None
    ref = wt.released.snapshot_ref
    assert ref is not None
    assert git("show", f"{ref}:notes.txt", cwd=repo) == "unfinished\n"
    with pytest.raises(ZeroDivisionError), ws.worktrees.lease("agent-8") as other:
        _ = 1 / 0
    assert not other.path.exists(), "released on exception too"
    assert ws.worktrees.list().leases == []


def test_release_from_inside_the_leased_worktree(repo: Path) -> None:
    doc = acquire_json(repo, "a", "--base", "main")
    path = Path(str(doc["path"]))
    assert json.loads(gitxact("worktree", "list", "--json", cwd=path).stdout)["leases"][0]["base"] == "main"
    proc = gitxact("worktree", "release", "a", "--token", str(doc["token"]), cwd=path)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()
    assert len(porcelain(repo)) == 1


@pytest.mark.slow
def test_library_lease_heartbeats_while_the_block_runs(repo: Path) -> None:
    import time

    git("config", "gitxact.leaseTtl", "3", cwd=repo)  # renewed every second
    ws = Workspace(repo)
    with ws.worktrees.lease("a") as wt:
        first = ws.worktrees.list().leases[0].heartbeat
        deadline = time.monotonic() + 30
        while ws.worktrees.list().leases[0].heartbeat == first:
            assert time.monotonic() < deadline, "no heartbeat within 30s"
            time.sleep(0.1)
        assert wt.path.is_dir()
    assert ws.worktrees.list().leases == []


def test_acquire_copies_the_ignored_files_worktreeinclude_names(repo: Path) -> None:
    """Issue 15: `.env` and local config a worktree needs, copied at acquire; tracked files never."""
    (repo / ".gitignore").write_text(".env\nlocal/\nbuild/\n")
    (repo / ".worktreeinclude").write_text(".env\nlocal/\n")
    subprocess.run(["git", "add", ".gitignore", ".worktreeinclude"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "ignore"], cwd=repo, check=True)
    (repo / ".env").write_text("SECRET=1\n")
    (repo / "local").mkdir()
    (repo / "local" / "settings.toml").write_text("x = 1\n")
    (repo / "build").mkdir()
    (repo / "build" / "big.bin").write_text("not named\n")
    doc = Workspace(repo).worktrees.acquire("inc", owner_pid=os.getpid())
    wt = Path(doc.path)
    assert sorted(doc.included) == [".env", "local/settings.toml"]
    assert (wt / ".env").read_text() == "SECRET=1\n"
    assert (wt / "local" / "settings.toml").exists()
    assert not (wt / "build").exists(), "only what .worktreeinclude names"
