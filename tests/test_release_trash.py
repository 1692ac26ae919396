"""Release speed (issue 27): a release renames the worktree's files into gitxact's trash and
deletes them once the lease is gone; a release killed after the rename is finished by reap.

Nothing but what gitxact renamed there is ever deleted from the trash: a folder someone
made there by hand, one with a forged mark, and a symbolic link out of it all survive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.proc import git, gitxact

from fixtures.repos import make_repo
from gitxact.worktrees import trash

POINTS = ["worktree-end-emptying", "worktree-end-trashed"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert gitxact("init", cwd=repo).returncode == 0
    return repo


def acquire(repo: Path, agent: str) -> Path:
    proc = gitxact("worktree", "acquire", agent, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    return Path(json.loads(proc.stdout)["path"])


def fill(path: Path) -> None:
    (path / "wip.txt").write_text("precious\n")
    for n in range(3):
        (path / f"dir{n}").mkdir()
        (path / f"dir{n}" / "f.txt").write_text(f"{n}\n")


def wait_gone(path: Path) -> None:
    deadline = time.monotonic() + 60
    while os.path.lexists(path):
        assert time.monotonic() < deadline, f"{path} still there: the detached deleter never ran"
        time.sleep(0.05)


def test_a_release_leaves_no_folder_and_its_trash_is_emptied_after(repo: Path) -> None:
    path = acquire(repo, "a")
    fill(path)
    proc = gitxact("worktree", "release", "a", "--force", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()
    saved = json.loads(proc.stdout)["snapshot_ref"]
    assert git("show", f"{saved}:wip.txt", cwd=repo) == "precious\n"
    wait_gone(repo.parent / "repo.worktrees" / trash.TRASH)  # emptied, then the empty trash folder too
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
    git("fsck", "--strict", cwd=repo)


@pytest.mark.parametrize("point", POINTS)
def test_a_release_killed_after_renaming_into_the_trash_is_finished_by_reap_deleting_nothing_else(
    repo: Path, tmp_path: Path, point: str
) -> None:
    path = acquire(repo, "a")
    other = acquire(repo, "b")  # another agent's lease, at work: untouched
    (other / "b-work.txt").write_text("b's\n")
    fill(path)
    root = repo.parent / "repo.worktrees"
    bin_ = root / trash.TRASH
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not gitxact's\n")
    proc = gitxact("worktree", "release", "a", "--force", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    (entry,) = trash.entries(root)
    moved = sorted(p.name for p in (entry / trash.FILES).iterdir())
    assert moved
    assert set(moved) <= {"README.md", "wip.txt", "dir0", "dir1", "dir2", "src"} | set(os.listdir(repo))
    # What must survive the reap: things in the trash gitxact never renamed there.
    (bin_ / "by-hand").mkdir()
    (bin_ / "by-hand" / "x.txt").write_text("a person's\n")
    forged = bin_ / "forged"
    forged.mkdir()
    (forged / trash.MARK).write_text("not a mark\n")
    (forged / trash.FILES).mkdir()
    (forged / trash.FILES / "y.txt").write_text("kept\n")
    os.symlink(outside, bin_ / "link-out")
    done = gitxact("worktree", "reap", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout + done.stderr
    doc = json.loads(done.stdout)
    assert [(e["agent"], e["action"]) for e in doc["ended"]] == [("a", "finish-release")]
    assert doc["trash_emptied"] == [entry.name]
    assert not entry.exists()
    assert not path.exists()
    assert sorted(os.listdir(bin_)) == ["by-hand", "forged", "link-out"]
    assert (bin_ / "by-hand" / "x.txt").read_text() == "a person's\n"
    assert (forged / trash.FILES / "y.txt").read_text() == "kept\n"
    assert (outside / "keep.txt").read_text() == "not gitxact's\n"
    assert (other / "b-work.txt").read_text() == "b's\n"
    # The work was saved before anything moved, once.
    saved = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/a/", cwd=repo).split()
    assert len(saved) == 1
    assert git("show", f"{saved[0]}:wip.txt", cwd=repo) == "precious\n"
    assert git("show", f"{saved[0]}:dir2/f.txt", cwd=repo) == "2\n"
    listing = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)
    assert [lease["agent"] for lease in listing["leases"]] == ["b"]
    git("fsck", "--strict", cwd=repo)


def test_reap_leaves_the_trash_of_a_release_still_under_way(repo: Path) -> None:
    """An entry whose lease record still exists belongs to that release (it may be renaming)."""
    path = acquire(repo, "a")
    fill(path)
    killed = gitxact("worktree", "release", "a", "--force", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": POINTS[1]})
    assert killed.returncode == -signal.SIGKILL
    (entry,) = trash.entries(repo.parent / "repo.worktrees")
    records = json.loads((repo / ".git" / "gitxact" / "state" / "leases.json").read_text())["data"]["leases"]
    assert not trash.delete(entry, live=[records["a"]["token_hash"]])
    assert (entry / trash.FILES / "wip.txt").exists()


def test_a_trash_folder_others_may_write_is_never_used_nor_emptied(repo: Path) -> None:
    bin_ = repo.parent / "repo.worktrees" / trash.TRASH
    bin_.mkdir(parents=True)
    path = acquire(repo, "a")
    fill(path)
    os.chmod(bin_, 0o777)  # a shared folder: an entry in it proves nothing about who made it
    proc = gitxact("worktree", "release", "a", "--force", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()  # deleted in place, as before
    assert os.listdir(bin_) == []
    planted = bin_ / "a-0123456789abcdef"
    (planted / trash.FILES).mkdir(parents=True)
    (planted / trash.MARK).write_text("gitxact-trash 0123\n")
    assert gitxact("worktree", "reap", cwd=repo).returncode == 0
    assert planted.exists()
    subprocess.run(["git", "fsck"], cwd=repo, check=True, capture_output=True)


def test_a_release_run_from_inside_its_own_worktree_still_empties_the_trash(repo: Path) -> None:
    """The deleter starts from /: the folder the release was run in is the one it removed."""
    path = acquire(repo, "a")
    fill(path)
    proc = gitxact("worktree", "release", "a", "--force", cwd=path / "dir1")
    assert proc.returncode == 0, proc.stderr
    assert not path.exists()
    wait_gone(repo.parent / "repo.worktrees" / trash.TRASH)
