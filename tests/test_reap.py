"""Reap, repair and crash safety of leases: real owner processes, SIGKILL, rm -rf."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.leases import acquire_json
from support.proc import git, git_commit_paused_in_editor, gitxact, kill_group, owner_process

from gitxact import Workspace
from gitxact.leases import records


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    with owner_process() as proc:
        yield proc


def registered(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git("worktree", "list", "--porcelain", cwd=repo).splitlines()
        if line.startswith("worktree ")
    ]


def lease_agents(repo: Path) -> list[str]:
    return [item.agent for item in Workspace(repo).worktrees.list().leases]


def assert_fsck_clean(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower()


def test_reap_ends_a_sigkilled_owners_lease_and_never_a_live_one(repo: Path, owner: subprocess.Popen[bytes]) -> None:
    doomed = acquire_json(repo, "doomed", "--owner-pid", str(owner.pid))
    live = acquire_json(repo, "live")
    (Path(str(doomed["path"])) / "wip.txt").write_text("half done\n")
    (Path(str(live["path"])) / "wip.txt").write_text("busy\n")

    dry = json.loads(gitxact("worktree", "reap", "--dry-run", "--json", cwd=repo).stdout)
    assert dry["ended"] == []
    assert set(dry["kept"]) == {"doomed", "live"}

    owner.send_signal(signal.SIGKILL)
    owner.wait()
    dry = json.loads(gitxact("worktree", "reap", "--dry-run", "--json", cwd=repo).stdout)
    assert [e["agent"] for e in dry["ended"]] == ["doomed"]
    assert Path(str(doomed["path"])).is_dir(), "dry run changes nothing"

    proc = gitxact("worktree", "reap", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [e["agent"] for e in report["ended"]] == ["doomed"]
    ended = report["ended"][0]
    assert "gone" in ended["reason"]
    assert git("show", f"{ended['snapshot_ref']}:wip.txt", cwd=repo) == "half done\n"
    assert not Path(str(doomed["path"])).exists()
    assert list(report["kept"]) == ["live"]
    assert (Path(str(live["path"])) / "wip.txt").read_text() == "busy\n", "the live lease is untouched"
    assert lease_agents(repo) == ["live"]
    assert str(doomed["path"]) not in registered(repo)
    assert_fsck_clean(repo)


def test_reap_ends_an_expired_lease_whose_owner_cannot_be_proven_alive(repo: Path) -> None:
    git("config", "gitxact.leaseTtl", "0", cwd=repo)
    doc = acquire_json(repo, "a")  # owned by this test process: alive, so the TTL does not end it
    report = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert (report["ended"], list(report["kept"])) == ([], ["a"])
    # A record without a start time (one the owner's /proc could not tell) proves nothing:
    # the TTL decides, as for another host's owner.
    ws = Workspace(repo)
    lease = records.for_agent(ws, "a")
    assert lease is not None
    assert records.replace_record(ws, lease.model_copy(update={"owner_start": None}))
    report = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert [e["agent"] for e in report["ended"]] == ["a"]
    assert "heartbeat" in report["ended"][0]["reason"]
    assert "cannot be proven alive" in report["ended"][0]["reason"]
    assert not Path(str(doc["path"])).exists()


def test_folder_removed_by_hand_is_cleaned_from_git_and_state(repo: Path) -> None:
    doc = acquire_json(repo, "a")
    path = Path(str(doc["path"]))
    shutil.rmtree(path)
    assert str(path) in registered(repo), "git keeps a locked registration whose folder is gone"
    listing = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"][0]
    assert listing["folder_missing"] is True
    report = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert [(e["agent"], e["action"]) for e in report["ended"]] == [("a", "forget-missing")]
    assert str(path) not in registered(repo)
    assert lease_agents(repo) == []
    assert_fsck_clean(repo)


def test_unlocked_leased_worktree_is_locked_again_by_repair(repo: Path) -> None:
    doc = acquire_json(repo, "a")
    git("worktree", "unlock", str(doc["path"]), cwd=repo)
    assert Workspace(repo).worktrees.repair(dry_run=True).relocked == ["a"]
    report = Workspace(repo).worktrees.repair()
    assert report.relocked == ["a"]
    assert "locked gitxact lease a" in git("worktree", "list", "--porcelain", cwd=repo)


def test_orphan_worktree_without_a_record_is_ended_with_its_work_saved(repo: Path) -> None:
    from gitxact.leases import records as leases

    ws = Workspace(repo)
    doc = ws.worktrees.acquire("a")
    (Path(doc.path) / "wip.txt").write_text("orphaned work\n")
    # What a `git worktree add` that outlived its killed parent leaves: git's locked
    # registration and the folder, but no lease record.
    assert leases.drop_record(ws, leases.load_records(ws)["a"])
    dry = ws.worktrees.repair(dry_run=True)
    assert [(e.action, e.agent) for e in dry.ended] == [("remove-orphan", "a")]
    report = ws.worktrees.repair()
    assert report.errors == 0
    ended = report.ended[0]
    assert ended.snapshot_ref is not None
    assert git("show", f"{ended.snapshot_ref}:wip.txt", cwd=repo) == "orphaned work\n"
    assert registered(repo) == [str(repo)]
    assert not Path(doc.path).exists()
    assert_fsck_clean(repo)


ACQUIRE_CRASHES = ["worktree-acquire-recorded", "worktree-acquire-claimed", "worktree-acquire-added"]


@pytest.mark.parametrize("point", ACQUIRE_CRASHES)
def test_acquire_killed_midway_is_undone_by_repair(repo: Path, point: str) -> None:
    proc = gitxact("worktree", "acquire", "a", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL
    assert Workspace(repo).worktrees.repair(dry_run=True).ended[0].action == "undo-acquire"
    report = Workspace(repo).worktrees.repair()
    assert [e.action for e in report.ended] == ["undo-acquire"]
    assert report.errors == 0
    assert lease_agents(repo) == []
    assert registered(repo) == [str(repo)]
    assert list((repo.parent / "repo.worktrees").iterdir()) == []
    assert "gitxact/a" not in git("branch", "--list", cwd=repo)
    assert_fsck_clean(repo)
    again = acquire_json(repo, "a")
    assert again["path"] == str(repo.parent / "repo.worktrees" / "a")


def test_acquire_after_a_crashed_acquire_cleans_up_by_itself(repo: Path) -> None:
    proc = gitxact("worktree", "acquire", "a", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": "worktree-acquire-added"})
    assert proc.returncode == -signal.SIGKILL
    doc = acquire_json(repo, "a")
    assert doc["replaced"]["action"] == "undo-acquire"  # type: ignore[index]
    assert doc["path"] == str(repo.parent / "repo.worktrees" / "a")
    assert len(registered(repo)) == 2


RELEASE_CRASHES = [
    ("worktree-end-marked", True),
    ("worktree-end-marked", False),
    ("worktree-end-saved", False),
    ("worktree-end-saved", True),
    ("worktree-end-removed", False),
    ("worktree-end-removed", True),
    ("worktree-end-dropped", False),
]


@pytest.mark.parametrize(("point", "keep"), RELEASE_CRASHES)
def test_release_killed_midway_is_recoverable_and_no_work_is_lost(repo: Path, point: str, keep: bool) -> None:
    doc = acquire_json(repo, "a")
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("precious\n")
    args = ["--keep-branch"] if keep else []
    proc = gitxact("worktree", "release", "a", "--force", *args, cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL
    report = Workspace(repo).worktrees.repair()
    assert report.errors == 0
    if lease_agents(repo):
        # Killed before the worktree was removed and nothing written down: the lease is
        # simply still there, whole, with the work in place; the release can be retried.
        assert not keep
        assert report.ended == []
        assert (path / "wip.txt").read_text() == "precious\n"
        retry = gitxact("worktree", "release", "a", "--force", cwd=repo)
        assert retry.returncode == 0, retry.stderr
    assert lease_agents(repo) == []
    assert registered(repo) == [str(repo)]
    assert not path.exists()
    saved = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/a/", cwd=repo).split()
    assert saved, "the uncommitted work is in a snapshot ref"
    assert all(git("show", f"{ref}:wip.txt", cwd=repo) == "precious\n" for ref in saved)
    if keep:
        assert "gitxact/a" in git("branch", "--list", cwd=repo), "--keep-branch is honoured after a crash"
    assert_fsck_clean(repo)
    # Whatever the crash left of the branch, the agent can lease again.
    acquire_json(repo, "a")


def test_reap_killed_midway_is_finished_by_the_next_reap(repo: Path, owner: subprocess.Popen[bytes]) -> None:
    doc = acquire_json(repo, "a", "--owner-pid", str(owner.pid))
    (Path(str(doc["path"])) / "wip.txt").write_text("precious\n")
    owner.kill()
    owner.wait()
    proc = gitxact("worktree", "reap", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": "worktree-end-saved"})
    assert proc.returncode == -signal.SIGKILL
    report = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert [(e["agent"], e["action"]) for e in report["ended"]] == [("a", "reap")]
    assert lease_agents(repo) == []
    assert registered(repo) == [str(repo)]
    saved = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/a/", cwd=repo).split()
    assert saved
    assert_fsck_clean(repo)


def _spawn_acquires(repo: Path, agents: list[str]) -> list[subprocess.CompletedProcess[str]]:
    from support.proc import GITXACT

    procs = [
        subprocess.Popen(
            [*GITXACT, "worktree", "acquire", agent, "--json"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for agent in agents
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return results


@pytest.mark.slow
def test_twelve_concurrent_acquires_get_twelve_locked_worktrees(repo: Path) -> None:
    agents = [f"agent-{i}" for i in range(12)]
    results = _spawn_acquires(repo, agents)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    docs = [json.loads(r.stdout) for r in results]
    assert len({d["path"] for d in docs}) == 12
    assert len({d["branch"] for d in docs}) == 12
    assert all(d["existing"] is False and d["token"] for d in docs)
    blocks = [b for b in git("worktree", "list", "--porcelain", cwd=repo).split("\n\n") if b.strip()]
    linked = [b for b in blocks if not b.startswith(f"worktree {repo}\n")]
    assert len(linked) == 12
    assert all("\nlocked gitxact lease " in b for b in linked)
    assert sorted(lease_agents(repo)) == sorted(agents)
    assert_fsck_clean(repo)


@pytest.mark.slow
def test_three_concurrent_acquires_for_one_agent_make_one_worktree(repo: Path) -> None:
    results = _spawn_acquires(repo, ["same", "same", "same"])
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    docs = [json.loads(r.stdout) for r in results]
    assert len({d["path"] for d in docs}) == 1
    assert sorted(d["existing"] for d in docs) == [False, True, True]
    assert len([d for d in docs if d["token"]]) == 1, "the token is handed out once"
    assert len(registered(repo)) == 2
    assert lease_agents(repo) == ["same"]


def test_reap_clears_the_index_lock_a_git_killed_with_its_agent_left(
    repo: Path, owner: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """Found by the 600 s torture run: an agent killed while its git held index.lock (and a
    transaction open) could not be reaped until `recover` ran; now reap proves the lock
    orphaned itself, saves the work and rolls the transaction back."""
    doc = acquire_json(repo, "doomed", "--owner-pid", str(owner.pid))
    path = Path(str(doc["path"]))
    env = {"GITXACT_LEASE_TOKEN": str(doc["token"])}
    assert gitxact("tx", "begin", "t1", cwd=path, env=env).returncode == 0
    (path / "README").write_text("the agent's change\n")
    raw = git_commit_paused_in_editor(path, tmp_path / "ready", "-a")
    lock = repo / ".git" / "worktrees" / path.name / "index.lock"
    assert lock.exists()
    kill_group(raw)
    owner.kill()
    owner.wait()
    proc = gitxact("worktree", "reap", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (ended,) = json.loads(proc.stdout)["ended"]
    assert ended["stale_lock_removed"].startswith(f"removed {lock}")
    assert ended["transaction"].startswith("rolled back")
    assert git("show", f"{ended['snapshot_ref']}:README", cwd=repo) == "the agent's change\n"
    assert lease_agents(repo) == []
    assert str(path) not in registered(repo)
    assert_fsck_clean(repo)
