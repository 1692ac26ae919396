"""A live agent's worktree is never taken from it (issue 24, part 1), and no worktree's
files go unsaved whatever its record says (issue 25, part 5).

On this host the owner's liveness (pid and start time) decides: a lease whose owner
provably runs is kept by reap, recover, ``doctor --fix`` and a re-acquire however old its
heartbeat; ``worktree list`` and ``status`` only warn. Real owner processes (``sleep``),
real waits past a one-second TTL, real SIGKILLs.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.leases import acquire_json
from support.proc import git, gitxact

from gitxact import Workspace
from gitxact.leases import records


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A real, idle owner process (``sleep``), always killed and reaped."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _listed(repo: Path) -> dict[str, dict[str, object]]:
    proc = gitxact("worktree", "list", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return {item["agent"]: item for item in json.loads(proc.stdout)["leases"]}


def _wait_until_expired(repo: Path, agent: str) -> dict[str, object]:
    """Real time passes the TTL (bounded): no heartbeat is forged."""
    deadline = time.monotonic() + 30
    while True:
        item = _listed(repo)[agent]
        if item["expired"]:
            return item
        assert time.monotonic() < deadline, "the lease never went past its TTL"
        time.sleep(0.2)


def _snapshots(repo: Path, agent: str) -> list[str]:
    return git("for-each-ref", "--format=%(refname)", f"refs/gitxact/snapshots/{agent}/", cwd=repo).split()


def test_a_live_owner_past_its_ttl_keeps_its_worktree_until_it_dies(
    repo: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    git("config", "gitxact.leaseTtl", "1", cwd=repo)
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("the agent's work\n")
    item = _wait_until_expired(repo, "a1")  # and it never calls renew
    assert (item["live"], item["owner"]["alive"]) == (True, True)  # type: ignore[index]
    assert "alive" in str(item["warning"])
    assert "renew" in str(item["warning"])

    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reap.returncode == 0, reap.stderr
    reaped = json.loads(reap.stdout)
    assert reaped["ended"] == []
    assert "is alive" in reaped["kept"]["a1"]
    assert "past its ttl" in reaped["kept"]["a1"]
    recover = gitxact("recover", "--json", cwd=repo)
    assert recover.returncode == 0, recover.stdout
    actions = [a for step in json.loads(recover.stdout)["steps"] for a in step["actions"]]
    assert not [a for a in actions if "a1" in a], actions
    doctor = gitxact("doctor", "--fix", "--json", cwd=repo)
    assert doctor.returncode == 0, doctor.stdout
    assert not [f for f in json.loads(doctor.stdout)["findings"] if "a1" in f["problem"]], doctor.stdout
    again = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))  # a re-acquire does not take it either
    assert (again["existing"], again["path"], again["replaced"]) == (True, str(path), None)

    assert (path / "wip.txt").read_text() == "the agent's work\n"
    assert str(path) in git("worktree", "list", "--porcelain", cwd=repo)
    assert _listed(repo)["a1"]["live"] is True
    assert _snapshots(repo, "a1") == [], "nothing was saved: nothing was ended"

    listing = gitxact("worktree", "list", cwd=repo).stdout
    assert "live, heartbeat stale" in listing
    assert "warning: a1: no heartbeat for" in listing
    status = gitxact("status", "--json", cwd=repo)
    assert status.returncode == 0, status.stderr
    (lease,) = json.loads(status.stdout)["leases"]
    assert (lease["agent"], lease["live"], lease["expired"]) == ("a1", True, True)
    assert "alive" in lease["warning"]
    assert "warning: a1: no heartbeat for" in gitxact("status", cwd=repo).stdout

    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    assert _listed(repo)["a1"]["live"] is False
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reap.returncode == 0, reap.stderr
    (ended,) = json.loads(reap.stdout)["ended"]
    assert (ended["agent"], "gone" in ended["reason"]) == ("a1", True)
    assert git("show", f"{ended['snapshot_ref']}:wip.txt", cwd=repo) == "the agent's work\n"
    assert not path.exists()
    assert _listed(repo) == {}
    git("fsck", "--no-progress", cwd=repo)


def test_a_fresh_lease_has_no_warning_and_a_live_owners_reap_reason_says_why(
    repo: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    item = _listed(repo)["a1"]
    assert (item["live"], item["expired"], item["warning"]) == (True, False, None)
    assert "warning" not in gitxact("worktree", "list", cwd=repo).stdout
    kept = json.loads(gitxact("worktree", "reap", "--dry-run", "--json", cwd=repo).stdout)["kept"]
    assert kept["a1"].startswith(f"live: owner pid {sleeper.pid} ")
    assert "past its ttl" not in kept["a1"]


@pytest.mark.parametrize(
    ("owner", "said"),
    [
        ({"owner_start": None}, "cannot be proven alive"),
        ({"owner_host": "another-host"}, "cannot be checked from here"),
    ],
)
def test_the_ttl_still_ends_a_lease_whose_owner_cannot_be_proven_alive(
    repo: Path, sleeper: subprocess.Popen[bytes], owner: dict[str, object], said: str
) -> None:
    git("config", "gitxact.leaseTtl", "1", cwd=repo)
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("saved, not lost\n")
    ws = Workspace(repo)
    lease = records.for_agent(ws, "a1")
    assert lease is not None
    # The record as one without a start time (unreadable /proc) or from another host reads.
    assert records.replace_record(ws, lease.model_copy(update=owner))
    item = _wait_until_expired(repo, "a1")
    assert (item["live"], item["owner"]["alive"], item["warning"]) == (False, None, None)  # type: ignore[index]
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reap.returncode == 0, reap.stderr
    (ended,) = json.loads(reap.stdout)["ended"]
    assert "no heartbeat for" in ended["reason"]
    assert said in ended["reason"]
    assert git("show", f"{ended['snapshot_ref']}:wip.txt", cwd=repo) == "saved, not lost\n"
    assert not path.exists()


# -- issue 25, part 5: a forged ``removing`` record -------------------------------------------


def _forge_removing(repo: Path, agent: str, token_hash: str) -> None:
    """What a member of a shared repository's group can write: a well-formed ``removing``
    record of *agent*'s worktree, owned by a dead pid (through gitxact's own store, so its
    checksum and envelope are valid)."""
    ws = Workspace(repo)
    lease = records.for_agent(ws, agent)
    assert lease is not None
    forged = lease.model_copy(update={"phase": "removing", "owner_pid": _dead_pid(), "token_hash": token_hash})
    records.save_record(ws, forged)


def _mark_of(path: Path) -> str:
    gitdir = (path / ".git").read_text().strip().removeprefix("gitdir: ")
    return (Path(gitdir) / "gitxact-lease").read_text().strip()


def test_a_forged_removing_record_with_the_marks_hash_has_the_work_saved_before_anything_goes(
    repo: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("never committed\n")
    (path / "README").write_text("edited\n")
    _forge_removing(repo, "a1", _mark_of(path))  # a forger who could read the mark
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reap.returncode == 0, reap.stderr
    (ended,) = json.loads(reap.stdout)["ended"]
    assert ended["action"] == "finish-release"
    assert ended["snapshot_ref"] is not None, "a removing record is no proof the work was saved"
    assert git("show", f"{ended['snapshot_ref']}:wip.txt", cwd=repo) == "never committed\n"
    assert git("show", f"{ended['snapshot_ref']}:README", cwd=repo) == "edited\n"
    assert _snapshots(repo, "a1") == [ended["snapshot_ref"]]
    git("fsck", "--no-progress", cwd=repo)


def test_a_forged_removing_record_vouched_for_by_gits_lock_reason_deletes_nothing(
    repo: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("never committed\n")
    # The forger does not know the token hash; git's `locked` file (group-readable, naming
    # the agent) was the evidence that let such a record delete the worktree.
    _forge_removing(repo, "a1", "0" * 64)
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    assert reap.returncode == 0, reap.stderr
    (ended,) = json.loads(reap.stdout)["ended"]
    assert (ended["action"], ended["snapshot_ref"], ended["worktree_removed"]) == ("drop-foreign", None, False)
    assert (path / "wip.txt").read_text() == "never committed\n"
    assert str(path) in git("worktree", "list", "--porcelain", cwd=repo)
    # Its record is gone (the forger overwrote it): the worktree is now an orphan, which the
    # next reap ends like any lease: its work saved first.
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    (ended,) = json.loads(reap.stdout)["ended"]
    assert ended["action"] == "remove-orphan"
    assert git("show", f"{ended['snapshot_ref']}:wip.txt", cwd=repo) == "never committed\n"


def test_a_mark_owned_by_someone_else_is_no_evidence(repo: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """The mark must be a regular file of the worktree's maker (or root): one that a group
    member replaced (here: a symbolic link to a file holding the forged hash) is not."""
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("never committed\n")
    gitdir = Path((path / ".git").read_text().strip().removeprefix("gitdir: "))
    forged = repo.parent / "forged-mark"
    forged.write_text("f" * 64 + "\n")
    (gitdir / "gitxact-lease").unlink()
    (gitdir / "gitxact-lease").symlink_to(forged)
    _forge_removing(repo, "a1", "f" * 64)
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    (ended,) = json.loads(reap.stdout)["ended"]
    assert (ended["action"], ended["worktree_removed"]) == ("drop-foreign", False)
    assert (path / "wip.txt").read_text() == "never committed\n"


def test_on_postgresql_a_live_owners_claim_outlives_its_ttl_with_its_lease(
    pg_repo: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    git("config", "gitxact.leaseTtl", "1", cwd=pg_repo)
    doc = acquire_json(pg_repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    _wait_until_expired(pg_repo, "a1")

    def claims() -> list[tuple[str, bool]]:
        fleet = json.loads(gitxact("worktree", "list", "--all-hosts", "--json", cwd=pg_repo).stdout)
        return [(c["agent"], c["expired"]) for c in fleet["claims"]]

    deadline = time.monotonic() + 30
    while claims() != [("a1", True)]:  # the server's clock judges the claim's expiry
        assert time.monotonic() < deadline, claims()
        time.sleep(0.2)
    reap = gitxact("worktree", "reap", "--json", cwd=pg_repo)
    assert reap.returncode == 0, reap.stderr
    reaped = json.loads(reap.stdout)
    assert (reaped["ended"], reaped["claims_ended"]) == ([], [])
    assert claims() == [("a1", True)], "this host's claim of a live owner is kept with its lease"
    assert path.is_dir()
    sleeper.send_signal(signal.SIGKILL)
    sleeper.wait()
    reaped = json.loads(gitxact("worktree", "reap", "--json", cwd=pg_repo).stdout)
    assert [e["agent"] for e in reaped["ended"]] == ["a1"]
    assert [c["agent"] for c in reaped["claims_ended"]] == ["a1"]
    assert claims() == []


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_mark_another_user_wrote_is_no_evidence(repo: Path, sleeper: subprocess.Popen[bytes]) -> None:
    """What a member of a shared repository's group can do to a group-writable admin
    folder: replace the mark with one of their own, holding the hash of their forged
    record. The file is then theirs (here: ``nobody``'s), not the worktree maker's."""
    doc = acquire_json(repo, "a1", "--owner-pid", str(sleeper.pid))
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("never committed\n")
    mark = Path((path / ".git").read_text().strip().removeprefix("gitdir: ")) / "gitxact-lease"
    other = pwd.getpwnam("nobody")
    mark.unlink()
    mark.write_text("f" * 64 + "\n")
    os.chown(mark, other.pw_uid, other.pw_gid)
    _forge_removing(repo, "a1", "f" * 64)
    reap = gitxact("worktree", "reap", "--json", cwd=repo)
    (ended,) = json.loads(reap.stdout)["ended"]
    assert (ended["action"], ended["worktree_removed"]) == ("drop-foreign", False)
    assert (path / "wip.txt").read_text() == "never committed\n"
    assert str(path) in git("worktree", "list", "--porcelain", cwd=repo)
