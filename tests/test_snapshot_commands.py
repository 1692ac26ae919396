"""`gitxact snapshots list|show|restore|drop|expire`: the work a lease left behind, back or gone.

The story: an agent's lease ends with uncommitted work (staged, unstaged, untracked,
deleted); the snapshot is listed and shown; restored exactly when the agent comes
back to the same commit, merged when its branch moved on; dropped by name or by age,
but never while its lease or transaction lives.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.hostile import run_cli
from support.leases import token
from support.proc import assert_clean_error, git, gitxact
from support.tx import fingerprint, make_work

from gitxact import Workspace
from gitxact.errors import OperationFailedError, RefusedError, UsageError
from gitxact.git import snapshots as git_snapshots
from gitxact.snapshots import catalog, expiry
from gitxact.snapshots.results import DropDoc
from gitxact.snapshots.usage import usage

OLD = {"GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z"}


def lease(repo: Path, agent: str) -> Path:
    # An agent coming back to its own unmerged branch says so (issue 15: a reused name is refused otherwise).
    doc = Workspace(repo).worktrees.acquire(agent, token=token(agent), owner_pid=os.getpid(), reuse="resume")
    return Path(doc.path)


def leave(repo: Path, agent: str) -> str:
    """End *agent*'s lease keeping its branch; the snapshot ref its dirty work went to."""
    doc = Workspace(repo).worktrees.release(agent, force=True, keep_branch=True)
    assert doc.snapshot_ref is not None
    return doc.snapshot_ref.removeprefix("refs/gitxact/snapshots/")


@pytest.fixture
def left(repo: Path) -> tuple[Path, str, dict[str, object]]:
    """agent-7 left work of every kind behind: (its worktree path, the snapshot name, the fingerprint)."""
    path = lease(repo, "agent-7")
    make_work(path)
    before = fingerprint(path)
    return path, leave(repo, "agent-7"), before


def test_list_and_show_say_what_was_kept(repo: Path, left: tuple[Path, str, dict[str, object]]) -> None:
    path, name, _ = left
    proc = gitxact("snapshots", "list", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == 1
    assert doc["count"] == 1
    [item] = doc["snapshots"]
    assert item["name"] == name
    assert item["ref"] == f"refs/gitxact/snapshots/{name}"
    assert (item["kind"], item["agent"], item["protected"]) == ("released", "agent-7", None)
    assert item["source"] == str(path)
    assert item["head"] == git("rev-parse", "gitxact/agent-7", cwd=repo).strip()

    shown = json.loads(gitxact("snapshots", "show", name, "--json", cwd=repo).stdout)
    files = {f["path"]: f["index"] + f["worktree"] for f in shown["files"]}
    assert files == {
        "README": "M ",
        "tracked.txt": " M",
        "doomed.txt": " D",
        "wip.txt": "??",
        "notes/idea.md": "??",
    }, "what `git status --short` showed when the lease ended (ignored build.log is not kept)"
    assert shown["size"] > 0
    text = gitxact("snapshots", "show", f"refs/gitxact/snapshots/{name}", cwd=repo).stdout
    assert "?? wip.txt" in text
    assert f"git diff {item['head'][:12]} refs/gitxact/snapshots/{name}" in text

    assert json.loads(gitxact("snapshots", "list", "--agent", "other", "--json", cwd=repo).stdout)["count"] == 0
    assert json.loads(gitxact("snapshots", "list", "--older-than", "1d", "--json", cwd=repo).stdout)["count"] == 0
    assert name in gitxact("snapshots", "list", "--agent", "agent-7", "--older-than", "0s", cwd=repo).stdout


def test_bad_input_is_exit_2_without_a_traceback(
    repo: Path,
    left: tuple[Path, str, dict[str, object]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(repo)  # in-process: a dozen CLI start-ups would cost seconds
    other = repo.parent / "other"
    git("init", "-q", str(other), cwd=repo.parent)
    for args in (
        ["list", "--older-than", "7 days"],
        ["list", "--older-than", "-1d"],
        ["list", "--agent", "../x"],
        ["show", "agent-7/nope"],
        ["show", "refs/heads/main"],
        ["restore", "agent-7/nope"],
        ["restore", left[1], "--into", "no-such-agent"],
        ["restore", left[1], "--into", str(other)],
        ["drop"],
        ["drop", left[1], "--all"],
        ["drop", "agent-7/nope"],
    ):
        code, _, err = run_cli(capsys, "snapshots", *args)
        assert code == 2, (args, err)
        assert err.startswith("gitxact: error: "), err
    assert "another repository" in run_cli(capsys, "snapshots", "restore", left[1], "--into", str(other))[2]
    for value in ("soon", "0"):
        git("config", "gitxact.snapshotExpiry", value, cwd=repo)
        code, _, err = run_cli(capsys, "snapshots", "expire")
        assert code == 2
        assert "gitxact.snapshotExpiry" in err
    assert_clean_error(gitxact("snapshots", "show", "nope", cwd=repo), 2)  # and as a real process


def test_restore_is_exact_where_the_work_was_left(repo: Path, left: tuple[Path, str, dict[str, object]]) -> None:
    _, name, before = left
    path = lease(repo, "agent-7")  # the kept branch, checked out as it was
    assert git("status", "--porcelain", cwd=path) == ""
    proc = gitxact("snapshots", "restore", name, "--into", "agent-7", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["method"], doc["saved_ref"], doc["files"]) == ("exact", None, 5)
    after = fingerprint(path)
    assert after == before, "index, status, untracked and deleted files exactly as the lease left them"
    assert catalog.find(Workspace(repo), name).name == name, "restoring keeps the snapshot"


def test_restore_merges_onto_a_branch_that_moved_on(repo: Path) -> None:
    (repo / "shared.txt").write_text("one\ntwo\nthree\n")
    git("add", "shared.txt", cwd=repo)
    git("commit", "-q", "-m", "shared", cwd=repo)
    path = lease(repo, "agent-7")
    (path / "shared.txt").write_text("one\ntwo\nthree\nfour (agent)\n")
    git("add", "shared.txt", cwd=path)
    (path / "new.txt").write_text("untracked\n")
    name = leave(repo, "agent-7")
    # Meanwhile main moves on; the next lease starts from there on a new branch.
    git("branch", "-D", "gitxact/agent-7", cwd=repo)
    (repo / "shared.txt").write_text("zero (main)\none\ntwo\nthree\n")
    (repo / "other.txt").write_text("main's\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "main moved", cwd=repo)
    path = lease(repo, "agent-7")

    doc = Workspace(path).snapshots.restore(name)
    assert doc.method == "applied"
    assert doc.index_restored
    assert (path / "shared.txt").read_text() == "zero (main)\none\ntwo\nthree\nfour (agent)\n"
    assert (path / "other.txt").read_text() == "main's\n", "HEAD's own files stay"
    assert git("status", "--porcelain", cwd=path) == "M  shared.txt\n?? new.txt\n"


def test_a_conflicting_restore_changes_nothing(repo: Path) -> None:
    path = lease(repo, "agent-7")
    (path / "README").write_text("agent's readme\n")
    name = leave(repo, "agent-7")
    git("branch", "-D", "gitxact/agent-7", cwd=repo)
    (repo / "README").write_text("main's readme\n")
    git("commit", "-q", "-am", "main edits README", cwd=repo)
    path = lease(repo, "agent-7")
    before = fingerprint(path)
    with pytest.raises(OperationFailedError, match="conflict with HEAD in README; nothing was changed"):
        Workspace(repo).snapshots.restore(name, into=path)
    assert fingerprint(path) == before


def test_restore_refuses_local_changes_unless_forced_and_keeps_them(
    repo: Path, left: tuple[Path, str, dict[str, object]]
) -> None:
    _, name, before = left
    path = lease(repo, "agent-7")
    (path / "mine.txt").write_text("newer work\n")
    assert_clean_error(gitxact("snapshots", "restore", name, cwd=path), 3)
    assert (path / "mine.txt").exists()

    doc = Workspace(path).snapshots.restore(name, force=True)
    assert fingerprint(path) == before
    assert doc.saved_ref is not None
    assert doc.saved_ref.startswith("refs/gitxact/snapshots/agent-7/before-restore/")
    assert git("show", f"{doc.saved_ref}:mine.txt", cwd=repo) == "newer work\n"
    kinds = {i.name: i.kind for i in catalog.read_all(Workspace(repo))}
    assert kinds[doc.saved_ref.removeprefix("refs/gitxact/snapshots/")] == "replaced"


def test_an_agent_restores_into_its_own_worktree_only(repo: Path, left: tuple[Path, str, dict[str, object]]) -> None:
    lease(repo, "agent-7")
    proc = gitxact("snapshots", "restore", left[1], "--into", "agent-7", cwd=repo, env={"GITXACT_AGENT": "bob"})
    assert_clean_error(proc, 3)
    assert "leased to 'agent-7'" in proc.stderr


def test_unborn_snapshot_applies_onto_a_born_head(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    git("init", "-q", "-b", "main", str(fresh), cwd=tmp_path)
    (fresh / "a.txt").write_text("a\n")
    ws = Workspace(fresh)
    ref = git_snapshots.save(ws.layout.common_dir, fresh, "worktree@main/manual", "test", {})
    (fresh / "a.txt").unlink()
    (fresh / "b.txt").write_text("b\n")
    git("add", "b.txt", cwd=fresh)
    git("commit", "-q", "-m", "first", cwd=fresh)
    doc = ws.snapshots.restore(ref)
    assert doc.method == "applied"
    assert (fresh / "a.txt").read_text() == "a\n"
    assert git("status", "--porcelain", cwd=fresh) == "?? a.txt\n"


def test_drop_never_takes_a_live_leases_or_transactions_snapshot(
    repo: Path, left: tuple[Path, str, dict[str, object]]
) -> None:
    _, released, _ = left
    path = lease(repo, "agent-7")  # a new lease of the same agent: the old snapshot is not its
    ws = Workspace(path)
    during = git_snapshots.save(ws.layout.common_dir, path, "agent-7/undone/manual", "test", {})
    ws.transactions.begin("t")
    items = {i.name: i for i in catalog.read_all(ws)}
    savepoint = next(i for i in items.values() if i.kind == "savepoint")
    assert "open transaction" in (savepoint.protected or "")
    assert "agent-7's lease, which is still active" in (items[during.split("/", 3)[3]].protected or "")
    assert items[released].protected is None

    proc = gitxact("snapshots", "drop", released, savepoint.name, cwd=repo)
    assert_clean_error(proc, 3)
    assert "nothing was dropped" in proc.stderr
    assert released in {i.name for i in catalog.read_all(ws)}

    doc = ws.snapshots.drop(everything=True)
    assert [d.name for d in doc.dropped] == [released]
    assert {k.name for k in doc.kept} == {savepoint.name, during.removeprefix("refs/gitxact/snapshots/")}
    ws.transactions.commit()
    main = Workspace(repo)
    main.worktrees.release("agent-7", force=True)
    left_over = main.snapshots.drop(agent="agent-7")
    assert {d.name for d in left_over.dropped} == {during.removeprefix("refs/gitxact/snapshots/")}
    assert catalog.read_all(main) == []
    assert git("for-each-ref", "refs/gitxact/snapshots/", cwd=repo) == ""


def test_drop_is_compare_and_swap(repo: Path, left: tuple[Path, str, dict[str, object]]) -> None:
    ws = Workspace(repo)
    [info] = catalog.read_all(ws)
    moved = git("rev-parse", "HEAD", cwd=repo).strip()
    git("update-ref", info.ref, moved, cwd=repo)  # someone moved it after it was listed
    doc = DropDoc(dry_run=False)
    expiry._delete(ws, [info], doc)
    assert doc.errors == 1
    assert not doc.dropped
    assert git("rev-parse", info.ref, cwd=repo).strip() == moved, "the moved ref is kept"


def test_expiry_drops_only_old_unprotected_snapshots(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for agent in ("old-1", "old-2"):
        path = lease(repo, agent)
        (path / "w.txt").write_text(agent)
        monkeypatch.setenv("GIT_COMMITTER_DATE", OLD["GIT_COMMITTER_DATE"])
        leave(repo, agent)
        monkeypatch.delenv("GIT_COMMITTER_DATE")
    path = lease(repo, "fresh")
    (path / "w.txt").write_text("fresh")
    recent = leave(repo, "fresh")
    ws = Workspace(repo)
    assert expiry.expire(ws).expiry is None, "no expiry configured: nothing is dropped"
    assert len(catalog.read_all(ws)) == 3
    before = usage(ws)
    assert (before.count, before.expiry) == (3, None)
    assert before.size > 0

    git("config", "gitxact.snapshotExpiry", "30d", cwd=repo)
    proc = gitxact("snapshots", "expire", "--dry-run", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    planned = json.loads(proc.stdout)
    assert planned["dry_run"] is True
    assert planned["expiry"] == 30 * 86400
    assert sorted(d["name"].split("/")[0] for d in planned["dropped"]) == ["old-1", "old-2"]
    assert len(catalog.read_all(ws)) == 3

    lease(repo, "old-1")  # a live lease of old-1 does not protect what an earlier lease left
    assert expiry.expire_for_gc(ws, force=False) is None, "gc will be refused while a lease is active"
    doc = expiry.expire_for_gc(ws, force=True)
    assert doc is not None
    assert len(doc.dropped) == 2
    assert [i.name for i in catalog.read_all(ws)] == [recent]
    assert expiry.describe(doc) == "dropped 2 snapshot(s) older than 30d"
    git("config", "gitxact.snapshotExpiry", "never", cwd=repo)
    assert expiry.expire_for_gc(ws, force=True) is None


def test_usage_of_a_repository_without_snapshots(repo: Path) -> None:
    doc = usage(Workspace(repo))
    assert (doc.count, doc.size, doc.protected) == (0, 0, 0)


def test_library_rejects_bad_durations(repo: Path) -> None:
    with pytest.raises(UsageError, match="invalid --older-than"):
        Workspace(repo).snapshots.list(older_than="soon")
    ws = Workspace(repo)
    path = lease(repo, "a")
    ref = git_snapshots.save(ws.layout.common_dir, path, "a/undone/x", "test", {})
    with pytest.raises(RefusedError, match="taken during a's lease"):
        ws.snapshots.drop(ref)


def test_resume_brings_back_the_newest_work_a_lease_left(repo: Path) -> None:
    from gitxact.snapshots.resume import resume

    path = lease(repo, "agent-7")
    (path / "first.txt").write_text("older\n")
    leave(repo, "agent-7")
    path = lease(repo, "agent-7")
    (path / "second.txt").write_text("newer\n")
    leave(repo, "agent-7")
    ws = Workspace(repo)
    assert resume(ws, "nobody", repo) is None
    path = lease(repo, "agent-7")
    doc = resume(ws, "agent-7", path)
    assert doc is not None
    assert doc.method == "exact"
    assert git("status", "--porcelain", cwd=path) == "?? second.txt\n"
