"""A restore brings the work back whole, or says what it leaves out (issue 24, part 3).

The story: an agent commits its failing test (`tdd red`) and is SIGKILLed during a long
`tdd green` check. `recover` ends its lease and rolls the sequence back, so the red
commit is held only by the snapshot ref that saved the worktree first. Restoring that
snapshot into a new lease from `main` must not quietly bring the uncommitted files
without the test file: it refuses, naming the commit and where it is kept, and
`--with-commits` brings the commit, then the work. A lease with commits of its own gets
the missing commits cherry-picked onto them; a target that has the base already
restores as before.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support.leases import token
from support.proc import GITXACT, assert_clean_error, git, gitxact, kill_group, owner_process, wait_for_file

from gitxact import Workspace
from gitxact.errors import OperationFailedError, RefusedError


def assert_fsck_clean(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--no-progress"], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower()


def acquire(repo: Path, agent: str, owner_pid: int) -> Path:
    proc = gitxact("worktree", "acquire", agent, "--owner-pid", str(owner_pid), "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout)["path"])


def crash_during_green(repo: Path, tmp_path: Path) -> tuple[str, str]:
    """agent-1 commits a red test, is killed in a long green check, and `recover` runs.

    Returns (the snapshot recover saved the crashed worktree to, the red commit).
    """
    with owner_process() as owner:
        path = acquire(repo, "agent-1", owner.pid)
        (path / "test_p.py").write_text("from p import answer\n\ndef test_answer():\n    assert answer() == 42\n")
        (path / "notes.txt").write_text("uncommitted notes\n")
        red = gitxact("tdd", "red", "--check", "false", "test_p.py", cwd=path)
        assert red.returncode == 0, red.stderr
        red_commit = git("rev-parse", "HEAD", cwd=path).strip()
        (path / "p.py").write_text("def answer():\n    return 42\n")
        started = tmp_path / "check-started"
        slow = tmp_path / "slow_check.py"  # a long check that says when it started, and its process group
        slow.write_text(
            "import os, pathlib, time\n"
            f"pathlib.Path({str(started)!r} + '.tmp').write_text(str(os.getpgid(0)))\n"
            f"os.replace({str(started)!r} + '.tmp', {str(started)!r})\n"
            "time.sleep(120)\n"
        )
        green = subprocess.Popen(
            [*GITXACT, "tdd", "green", "--check", f"{sys.executable} {slow}", "p.py"],
            cwd=path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for_file(started, "the green check to start", green)
        finally:
            kill_group(green)  # type: ignore[arg-type]
            with contextlib.suppress(OSError, ValueError):  # the check may run in a process group of its own
                os.killpg(int(started.read_text()), signal.SIGKILL)
        owner.kill()
        owner.wait()
    proc = gitxact("recover", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [reap] = [a for step in json.loads(proc.stdout)["steps"] for a in step["actions"] if "reap agent-1" in a]
    saved = reap.split("uncommitted work saved to ", 1)[1].split(";", 1)[0]
    assert git("cat-file", "-e", f"{red_commit}^{{commit}}", cwd=repo) == ""
    assert git("show", f"{saved}:test_p.py", cwd=repo).startswith("from p import answer"), "the snapshot holds it"
    return saved.removeprefix("refs/gitxact/snapshots/"), red_commit


def test_crash_then_restore_refuses_naming_the_commit_then_brings_it_whole(repo: Path, tmp_path: Path) -> None:
    Workspace(repo).init()
    name, red_commit = crash_during_green(repo, tmp_path)
    assert git("branch", "--list", "gitxact/agent-1", cwd=repo) == "", "recover rolled the branch back and ended it"
    assert git("branch", "--contains", red_commit, cwd=repo) == "", "so only the snapshot holds the red commit"

    with owner_process() as owner:
        path = acquire(repo, "agent-2", owner.pid)
        head = git("rev-parse", "HEAD", cwd=path).strip()
        refused = gitxact("snapshots", "restore", name, "--into", "agent-2", cwd=repo)
        assert_clean_error(refused, 3)
        assert f"{red_commit[:12]} (TDD RED: test_p.py)" in refused.stderr
        assert f"kept in refs/gitxact/snapshots/{name}" in refused.stderr
        assert f"gitxact snapshots restore {name} --into agent-2 --with-commits" in refused.stderr
        assert git("status", "--porcelain", cwd=path) == "", "nothing was changed"
        assert git("rev-parse", "HEAD", cwd=path).strip() == head

        proc = gitxact("snapshots", "restore", name, "--into", "agent-2", "--with-commits", "--json", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert (doc["method"], doc["commits"], doc["moved_from"], doc["head"]) == (
            "exact",
            "fast-forward",
            head,
            red_commit,
        )
        assert doc["missing"] == [{"commit": red_commit, "subject": "TDD RED: test_p.py", "brought_as": red_commit}]
        assert git("rev-parse", "gitxact/agent-2", cwd=repo).strip() == red_commit, "the lease's branch moved"
        assert (path / "test_p.py").read_text().startswith("from p import answer"), "the red commit's test file"
        assert (path / "p.py").read_text() == "def answer():\n    return 42\n", "the green work being checked"
        assert (path / "notes.txt").read_text() == "uncommitted notes\n"
        assert git("status", "--porcelain", cwd=path) == "?? notes.txt\n?? p.py\n"
        assert_fsck_clean(repo)
        released = gitxact("worktree", "release", "agent-2", "--force", cwd=repo)
        assert released.returncode == 0, released.stderr
    assert_fsck_clean(repo)


def test_commits_are_cherry_picked_onto_a_lease_with_commits_of_its_own(repo: Path, tmp_path: Path) -> None:
    Workspace(repo).init()
    name, red_commit = crash_during_green(repo, tmp_path)
    # Meanwhile main moved on, and the new lease has made a commit of its own.
    (repo / "main.txt").write_text("main moved on\n")
    git("add", "main.txt", cwd=repo)
    git("commit", "-q", "-m", "main moved on", cwd=repo)
    with owner_process() as owner:
        path = acquire(repo, "agent-2", owner.pid)
        (path / "own.txt").write_text("agent-2's own commit\n")
        git("add", "own.txt", cwd=path)
        git("commit", "-q", "-m", "agent-2's own", cwd=path)
        own = git("rev-parse", "HEAD", cwd=path).strip()

        with pytest.raises(RefusedError, match=f"{red_commit[:12]} \\(TDD RED: test_p.py\\)"):
            Workspace(repo).snapshots.restore(name, into="agent-2")
        doc = Workspace(repo).snapshots.restore(name, into="agent-2", with_commits=True)
        assert (doc.method, doc.commits, doc.moved_from) == ("applied", "cherry-pick", own)
        [picked] = doc.missing
        assert picked.commit == red_commit
        assert picked.brought_as == doc.head == git("rev-parse", "HEAD", cwd=path).strip()
        assert git("rev-parse", f"{doc.head}^", cwd=path).strip() == own, "the lease's own commit is kept under it"
        log = git("log", "-1", "--format=%an <%ae>%n%s", red_commit, cwd=repo)
        assert git("log", "-1", "--format=%an <%ae>%n%s", doc.head, cwd=path) == log, "author and message kept"
        for file, text in [("main.txt", "main moved on\n"), ("own.txt", "agent-2's own commit\n")]:
            assert (path / file).read_text() == text
        assert (path / "test_p.py").exists()
        assert (path / "p.py").exists()
        assert (path / "notes.txt").exists()
        assert git("status", "--porcelain", cwd=path) == "?? notes.txt\n?? p.py\n"
        assert_fsck_clean(repo)


def test_without_commits_restores_the_work_alone_and_names_what_it_left_out(repo: Path, tmp_path: Path) -> None:
    Workspace(repo).init()
    name, red_commit = crash_during_green(repo, tmp_path)
    with owner_process() as owner:
        path = acquire(repo, "agent-2", owner.pid)
        head = git("rev-parse", "HEAD", cwd=path).strip()
        proc = gitxact("snapshots", "restore", name, "--into", str(path), "--without-commits", cwd=repo)
        assert proc.returncode == 0, proc.stderr
        left = f"left out 1 commit(s) it was taken on (--without-commits):\n    {red_commit[:12]} TDD RED"
        assert left in proc.stdout
        assert f"they are kept in refs/gitxact/snapshots/{name}" in proc.stdout
        assert git("rev-parse", "HEAD", cwd=path).strip() == head
        assert not (path / "test_p.py").exists()
        assert git("status", "--porcelain", cwd=path) == "?? notes.txt\n?? p.py\n"


def test_a_target_that_has_the_base_restores_as_before(repo: Path) -> None:
    ws = Workspace(repo)
    ws.init()
    path = Path(ws.worktrees.acquire("agent-7", token=token("agent-7"), owner_pid=os.getpid()).path)
    (path / "done.txt").write_text("committed\n")
    git("add", "done.txt", cwd=path)
    git("commit", "-q", "-m", "agent-7's commit", cwd=path)
    (path / "wip.txt").write_text("uncommitted\n")
    name = ws.worktrees.release("agent-7", force=True, keep_branch=True).snapshot_ref
    assert name is not None
    # The branch comes back, then moves on: its HEAD holds the base, the work is merged onto it.
    path = Path(ws.worktrees.acquire("agent-7", token=token("agent-7"), owner_pid=os.getpid(), reuse="resume").path)
    (path / "later.txt").write_text("later\n")
    git("add", "later.txt", cwd=path)
    git("commit", "-q", "-m", "later", cwd=path)
    head = git("rev-parse", "HEAD", cwd=path).strip()
    proc = gitxact("snapshots", "restore", name, "--into", "agent-7", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert (doc["method"], doc["commits"], doc["missing"], doc["moved_from"], doc["head"]) == (
        "applied",
        "present",
        [],
        None,
        head,
    )
    assert git("status", "--porcelain", cwd=path) == "?? wip.txt\n"
    text = gitxact("snapshots", "restore", name, "--into", "agent-7", "--force", "--with-commits", cwd=repo).stdout
    assert "brought" not in text, "--with-commits with nothing to bring changes nothing more"
    assert git("rev-parse", "HEAD", cwd=path).strip() == head


def test_commits_landed_under_other_ids_are_not_asked_for(repo: Path) -> None:
    """A rebased landing puts the same change on main as another commit: `git cherry`'s rule."""
    ws = Workspace(repo)
    ws.init()
    git("switch", "-q", "-c", "topic", cwd=repo)
    (repo / "feature.txt").write_text("feature\n")
    git("add", "feature.txt", cwd=repo)
    git("commit", "-q", "-m", "feature", cwd=repo)
    (repo / "wip.txt").write_text("uncommitted\n")
    from gitxact.git import snapshots as git_snapshots

    ref = git_snapshots.save(ws.layout.common_dir, repo, "worktree@main/manual", "test", {})
    (repo / "wip.txt").unlink()
    git("switch", "-q", "main", cwd=repo)
    (repo / "other.txt").write_text("main's\n")
    git("add", "other.txt", cwd=repo)
    git("commit", "-q", "-m", "main's", cwd=repo)
    git("cherry-pick", "topic", cwd=repo)
    doc = ws.snapshots.restore(ref)
    assert (doc.method, doc.commits, doc.missing) == ("applied", "present", [])
    assert git("status", "--porcelain", cwd=repo) == "?? wip.txt\n"


def test_a_commit_that_cannot_be_picked_changes_nothing(repo: Path) -> None:
    ws = Workspace(repo)
    ws.init()
    git("switch", "-q", "-c", "topic", cwd=repo)
    (repo / "README").write_text("topic's readme\n")
    git("commit", "-q", "-am", "topic edits README", cwd=repo)
    (repo / "wip.txt").write_text("uncommitted\n")
    from gitxact.git import snapshots as git_snapshots

    ref = git_snapshots.save(ws.layout.common_dir, repo, "worktree@main/manual", "test", {})
    (repo / "wip.txt").unlink()
    git("switch", "-q", "main", cwd=repo)
    (repo / "README").write_text("main's readme\n")
    git("commit", "-q", "-am", "main edits README", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    with pytest.raises(OperationFailedError, match="conflicts with HEAD in README; nothing was changed"):
        ws.snapshots.restore(ref, with_commits=True)
    assert git("rev-parse", "HEAD", cwd=repo).strip() == head
    assert git("status", "--porcelain", cwd=repo) == ""
    assert_fsck_clean(repo)


def test_a_restore_killed_after_moving_head_is_finished_by_restoring_again(repo: Path, tmp_path: Path) -> None:
    Workspace(repo).init()
    name, red_commit = crash_during_green(repo, tmp_path)
    with owner_process() as owner:
        path = acquire(repo, "agent-2", owner.pid)
        killed = gitxact(
            "snapshots",
            "restore",
            name,
            "--into",
            "agent-2",
            "--with-commits",
            cwd=repo,
            env={"GITXACT_TEST_CRASHPOINT": "restore-head-moved"},
        )
        assert killed.returncode == -signal.SIGKILL
        assert git("rev-parse", "HEAD", cwd=path).strip() == red_commit, "the branch moved first"
        assert gitxact("recover", cwd=repo).returncode == 0
        assert_clean_error(gitxact("snapshots", "restore", name, "--into", "agent-2", cwd=repo), 3)
        again = gitxact("snapshots", "restore", name, "--into", "agent-2", "--force", cwd=repo)
        assert again.returncode == 0, again.stderr
        assert "exact: HEAD is where it was taken" in again.stdout, "its commits are there now: nothing to bring"
        assert (path / "test_p.py").exists()
        assert git("status", "--porcelain", cwd=path) == "?? notes.txt\n?? p.py\n"
        assert_fsck_clean(repo)


def test_an_unborn_or_detached_target_gets_the_commits_too(repo: Path) -> None:
    ws = Workspace(repo)
    ws.init()
    git("switch", "-q", "-c", "topic", cwd=repo)
    (repo / "feature.txt").write_text("feature\n")
    git("add", "feature.txt", cwd=repo)
    git("commit", "-q", "-m", "feature", cwd=repo)
    base = git("rev-parse", "HEAD", cwd=repo).strip()
    (repo / "wip.txt").write_text("uncommitted\n")
    from gitxact.git import snapshots as git_snapshots

    ref = git_snapshots.save(ws.layout.common_dir, repo, "worktree@main/manual", "test", {})
    (repo / "wip.txt").unlink()

    git("switch", "-q", "--orphan", "fresh", cwd=repo)
    with pytest.raises(RefusedError, match="not in HEAD unborn"):
        ws.snapshots.restore(ref)
    doc = ws.snapshots.restore(ref, with_commits=True)
    assert (doc.method, doc.commits, doc.moved_from) == ("exact", "fast-forward", None)
    assert git("rev-parse", "fresh", cwd=repo).strip() == base, "the unborn branch was created at the base"
    assert len(doc.missing) == 2, "the whole history under it"

    (repo / "wip.txt").unlink()
    git("switch", "-q", "--detach", "main", cwd=repo)
    (repo / "mine.txt").write_text("detached work\n")
    git("add", "mine.txt", cwd=repo)
    git("commit", "-q", "-m", "detached commit", cwd=repo)
    own = git("rev-parse", "HEAD", cwd=repo).strip()
    doc = ws.snapshots.restore(ref, with_commits=True)
    assert (doc.commits, doc.moved_from) == ("cherry-pick", own)
    assert git("symbolic-ref", "-q", "HEAD", cwd=repo, check=False) == "", "HEAD stays detached"
    assert git("rev-parse", "HEAD^", cwd=repo).strip() == own
    assert (repo / "feature.txt").exists()
    assert (repo / "mine.txt").exists()
    assert git("status", "--porcelain", cwd=repo) == "?? wip.txt\n"
    assert git("rev-parse", "main", cwd=repo).strip() != git("rev-parse", "HEAD", cwd=repo).strip()
