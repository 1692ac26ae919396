"""Forged but well-formed state: a lease record with a valid checksum that points at what is not gitxact's.

gitxact may only delete what it created: branches under its prefix that no worktree has
checked out and whose commits are on another branch, worktrees under its root that it
marked as its own, folders of its own. Whatever a record says.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import GX, git, gitxact, run

from gitxact import Workspace
from gitxact.git import snapshots as git_snapshots
from gitxact.land.queue import default_branch
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.leases.records import Lease, LeaseState, leases_file, load
from gitxact.tx.savepoints import namespace_for
from gitxact.util.identity import host_name


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _forge(repo: Path, **records: dict[str, object]) -> None:
    """Write lease records through gitxact's own store: checksum and envelope are valid."""
    ws = Workspace(repo)
    ws.init()
    file = leases_file(ws)
    dead = _dead_pid()
    state = LeaseState(
        leases={
            agent: Lease(
                agent=agent,
                base="main",
                token_hash="0" * 64,
                owner_pid=dead,
                owner_host=host_name(),
                created=time.time() - 10,
                heartbeat=time.time() - 10,
                ttl=3600,
                **fields,  # type: ignore[arg-type]
            )
            for agent, fields in records.items()
        }
    )
    with ws.locks.resource("leases"):
        file.save(state)


@pytest.fixture
def victims(repo: Path, tmp_path: Path) -> dict[str, Path]:
    """A person's own linked worktree (with an ignored .env), a non-gitxact branch, a folder outside."""
    (repo / ".gitignore").write_text(".env\n")
    git("add", ".gitignore", cwd=repo)
    git("commit", "-q", "-m", "ignore .env", cwd=repo)
    git("branch", "release", cwd=repo)  # its commits are on main too: "merged"
    mine = tmp_path / "mine"
    git("worktree", "add", "-q", "-b", "mine", str(mine), cwd=repo)
    (mine / ".env").write_text("SECRET=1\n")
    outside = tmp_path / "outside-folder"
    outside.mkdir()
    return {"mine": mine, "outside": outside}


def _intact(repo: Path, victims: dict[str, Path]) -> None:
    heads = git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=repo).split()
    assert {"main", "release", "mine"} <= set(heads), heads
    assert (victims["mine"] / ".env").read_text() == "SECRET=1\n"
    assert str(victims["mine"]) in git("worktree", "list", cwd=repo)
    assert victims["outside"].is_dir()
    git("fsck", "--strict", cwd=repo)


@pytest.mark.parametrize(
    "command",
    [["doctor", "--fix"], ["recover"], ["worktree", "reap"], ["worktree", "release", "ghost", "--force"]],
)
def test_forged_records_never_make_gitxact_delete_what_is_not_its_own(
    repo: Path, victims: dict[str, Path], command: list[str]
) -> None:
    _forge(
        repo,
        ghost={"path": str(victims["mine"]), "branch": "main", "phase": "active", "branch_created": True},
        spook={"path": str(victims["outside"]), "branch": "release", "phase": "provisioning", "branch_created": True},
    )
    proc = gitxact(*command, cwd=repo)
    assert "Traceback" not in proc.stderr, proc.stderr
    _intact(repo, victims)
    # The forged records are not acted on again, and gitxact says why it refused them.
    doctor = gitxact("doctor", cwd=repo)
    assert "Traceback" not in doctor.stderr
    _intact(repo, victims)


def test_a_worktree_under_the_root_without_gitxacts_mark_is_not_removed(repo: Path) -> None:
    root = repo.parent / "repo.worktrees"
    theirs = root / "theirs"
    git("worktree", "add", "-q", "-b", "gitxact/theirs", str(theirs), cwd=repo)  # a person's, in gitxact's folder
    (theirs / "notes.txt").write_text("mine\n")
    _forge(repo, theirs={"path": str(theirs), "branch": "gitxact/theirs", "branch_created": True})
    report = gitxact("doctor", cwd=repo)
    assert report.returncode == 1, "the forged record is reported"
    assert "does not carry gitxact's mark" in report.stdout, report.stdout
    assert gitxact("doctor", "--fix", cwd=repo).returncode == 0
    assert (theirs / "notes.txt").read_text() == "mine\n"
    assert git("rev-parse", "--verify", "-q", "gitxact/theirs", cwd=repo).strip()
    assert gitxact("doctor", cwd=repo).returncode == 0, "only the record went; nothing left to fix"


def test_foreign_records_are_reported_by_doctor_and_dropped_by_fix(repo: Path, victims: dict[str, Path]) -> None:
    _forge(repo, ghost={"path": str(victims["mine"]), "branch": "main"})
    report = gitxact("doctor", cwd=repo)
    assert report.returncode == 1
    assert "outside gitxact's worktree root" in report.stdout, report.stdout
    assert gitxact("doctor", "--fix", cwd=repo).returncode == 0
    assert gitxact("doctor", cwd=repo).returncode == 0
    _intact(repo, victims)


def test_a_leased_worktree_carries_gitxacts_mark(repo: Path) -> None:
    ws = Workspace(repo)
    with ws.worktrees.lease("agent-1") as wt:
        admin = Path(git("rev-parse", "--absolute-git-dir", cwd=wt.path).strip())
        assert (admin / "gitxact-lease").read_text().strip() == load(ws)["agent-1"].token_hash
    assert not wt.path.exists()


def test_a_forged_record_does_not_lock_anyone_out_of_main(repo: Path, victims: dict[str, Path]) -> None:
    """The hooks refuse changes to a leased branch by others, but only for a genuine lease."""
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    _forge(repo, ghost={"path": str(victims["mine"]), "branch": "main"})
    (repo / "f.txt").write_text("x\n")
    git("add", "f.txt", cwd=repo)
    proc = run(["git", "commit", "-q", "-m", "x"], repo, {"GITXACT_AGENT": "someone"})
    assert proc.returncode == 0, proc.stderr


def test_a_forged_record_is_no_lease_to_any_lookup(repo: Path, victims: dict[str, Path]) -> None:
    """Every "the lease of" question has the one, safe answer: no mark in the worktree, no lease.

    The record names a person's worktree and branch; before, the records' lookups believed
    it (the hooks' did not), so what a transaction, a savepoint, a restore or ``land`` saw
    depended on which reader its module imported.
    """
    mine = victims["mine"]
    _forge(repo, ghost={"path": str(mine), "branch": "refs/heads/mine"})
    ws = Workspace(repo)
    assert leases.for_path(ws, mine / "sub") is None
    assert leases.for_branch(ws, "mine") is None
    assert leases.for_agent(ws, "ghost") is None
    assert "ghost" in load(ws), "reap and doctor still see the record, to report and drop it"
    views = lease_reader.load(repo / ".git")
    assert lease_reader.for_path(views, str(mine)) is None
    assert lease_reader.for_branch(views, "refs/heads/mine") is None
    assert namespace_for(Workspace(mine, agent="someone")) == "worktree@mine"
    assert default_branch(Workspace(repo, agent="ghost")) == "refs/heads/main", "not the forged record's branch"
    # A transaction begun there by another agent is not refused as the ghost's, nor filed under it.
    someone = {"GITXACT_AGENT": "someone"}
    assert gitxact("tx", "begin", cwd=mine, env=someone).returncode == 0
    refs = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/", cwd=repo).split()
    assert refs
    assert all(ref.startswith("refs/gitxact/snapshots/worktree@mine/") for ref in refs), refs
    assert gitxact("tx", "commit", cwd=mine, env=someone).returncode == 0
    # Restoring into it is not a restore into a lease, and the ghost's name finds no worktree.
    name = git_snapshots.save(ws.layout.common_dir, mine, "worktree@mine/manual", "test", {}).removeprefix(
        git_snapshots.SNAPSHOT_PREFIX
    )
    restored = gitxact("snapshots", "restore", name, "--into", str(mine), cwd=repo, env=someone)
    assert restored.returncode == 0, restored.stderr
    into_ghost = gitxact("snapshots", "restore", name, "--into", "ghost", cwd=repo)
    assert into_ghost.returncode == 2, into_ghost.stderr
    assert "no agent of that name holds a lease" in into_ghost.stderr
    _intact(repo, victims)


def test_a_record_copying_a_lease_under_another_agent_name_is_not_that_lease(repo: Path) -> None:
    """A well-formed record that copies alice's token hash, path, branch and worktree id
    under a new agent name (``aaron``, listed before her, his owner dead) is no lease.

    The token hash is readable by whoever can read the leases file; the agent the worktree
    was made for is in git's lock reason, which the copy cannot change. Before, every
    lookup found aaron first (so he might work in alice's worktree and she might not) and
    reap ended his "dead" lease, removing alice's worktree.
    """
    alice = acquire(repo, "alice")
    ws = Workspace(repo)
    forged = load(ws)["alice"].model_copy(update={"agent": "aaron", "owner_pid": _dead_pid()})
    with ws.locks.resource("leases"):
        file = leases_file(ws)
        state = file.load(repair=True)
        state.leases["aaron"] = forged
        file.save(state)
    assert getattr(leases.for_path(ws, alice / "sub"), "agent", None) == "alice"
    assert getattr(leases.for_branch(ws, "gitxact/alice"), "agent", None) == "alice"
    assert leases.for_agent(ws, "aaron") is None
    assert leases.for_agent(ws, "alice") is not None
    views = lease_reader.load(ws.layout.common_dir)
    assert getattr(lease_reader.for_path(views, str(alice)), "agent", None) == "alice"
    assert getattr(lease_reader.for_branch(views, "refs/heads/gitxact/alice"), "agent", None) == "alice"
    assert lease_reader.agent_of_worktree(ws.layout.common_dir, alice) == "alice"
    # The hooks: aaron may not commit in alice's worktree; alice may.
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    (alice / "work.txt").write_text("alice's work\n")
    git("add", "work.txt", cwd=alice)
    as_aaron = run(["git", "commit", "-q", "-m", "aaron's"], alice, {"GITXACT_AGENT": "aaron"})
    assert as_aaron.returncode != 0
    assert "leased to 'alice'" in as_aaron.stderr, as_aaron.stderr
    as_alice = run(["git", "commit", "-q", "-m", "alice's"], alice, {"GITXACT_AGENT": "alice"})
    assert as_alice.returncode == 0, as_alice.stderr
    # gx's guard names alice's lease, not the copy.
    refused = run([*GX, "branch", "-D", "gitxact/alice"], repo)
    assert refused.returncode == 3, refused.stderr
    assert f"alice  {alice}  gitxact/alice" in refused.stderr
    assert "aaron" not in refused.stderr
    # doctor reports the copy; reap drops it, and only it: alice's worktree, branch and record stay.
    doctor = gitxact("doctor", cwd=repo)
    assert doctor.returncode == 1
    assert "aaron" in doctor.stdout, doctor.stdout
    reaped = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert [(e["agent"], e["action"]) for e in reaped["ended"]] == [("aaron", "drop-foreign")]
    assert set(load(ws)) == {"alice"}
    assert (alice / "work.txt").read_text() == "alice's work\n"
    assert str(alice) in git("worktree", "list", cwd=repo)
    assert git("log", "-1", "--format=%s", "gitxact/alice", cwd=repo).strip() == "alice's"
    assert gitxact("doctor", cwd=repo).returncode == 0


def test_a_record_that_names_another_worktree_meanwhile_gets_nothing_removed(repo: Path) -> None:
    """end_lease judged the folder of the record it was given; if that record names another
    worktree by the time the worktree lock is held (a forgery, with the same token hash),
    neither folder is touched: beta's uncommitted work stays where it is."""
    from gitxact.locking.tickets import EXCLUSIVE
    from gitxact.worktrees.lifecycle import end_lease

    ws = Workspace(repo)
    alpha_path, beta_path = acquire(repo, "alpha"), acquire(repo, "beta")
    (beta_path / "beta-work.txt").write_text("beta's uncommitted work\n")
    alpha = load(ws)["alpha"]
    leases.save_record(ws, alpha.model_copy(update={"path": str(beta_path)}))
    with ws.locks.repository(EXCLUSIVE):
        doc = end_lease(ws, alpha, action="reap", reason="test")
    assert "changed meanwhile" in doc.reason, doc.reason
    assert (beta_path / "beta-work.txt").read_text() == "beta's uncommitted work\n"
    assert alpha_path.is_dir()
    assert sorted(load(ws)) == ["alpha", "beta"]


def test_a_worktree_a_person_locked_again_is_still_its_leases(repo: Path) -> None:
    """`git worktree unlock` then a plain `git worktree lock` (no reason, or one of the
    person's own) names no other agent: the lease stays genuine for the hooks and reap does
    not call its worktree foreign (doctor --fix and recover would drop the record)."""
    ws = Workspace(repo)
    path = acquire(repo, "gamma")
    for reason in ([], ["--reason", "do not touch"]):
        git("worktree", "unlock", str(path), cwd=repo)
        git("worktree", "lock", *reason, str(path), cwd=repo)
        found = leases.for_path(ws, path)
        assert found is not None
        assert found.agent == "gamma"
        ended = ws.worktrees.reap(dry_run=True).ended
        assert all(end.action != "drop-foreign" for end in ended), ended
    assert "gamma" in load(ws)
