"""Sparse leases (issue 27): only some folders checked out, everything else works unchanged.

A sparse worktree keeps the paths outside its cone in the index with git's skip-worktree
bit and no file. Nothing gitxact does there may take those missing files for deleted
ones: not a snapshot (it would record the whole rest of the repository as deleted), not
a restore, not a commit, not a land.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
from support.proc import git, gitxact

from fixtures.repos import make_repo


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    """A repository with two services and a library; ``svc/api`` is where the agents work."""
    repo = make_repo(tmp_path / "repo")
    for rel in ("svc/api/app.txt", "svc/api/deep/mod.txt", "svc/web/page.txt", "lib/core/util.txt", "top.txt"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(f"{rel} v1\n")
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "monorepo", cwd=repo)
    assert gitxact("init", cwd=repo).returncode == 0
    return repo


def files_of(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*") if p.is_file() and ".git" not in p.parts}


def acquire(repo: Path, agent: str, *args: str) -> dict[str, object]:
    done = gitxact("worktree", "acquire", agent, "--json", *args, cwd=repo)
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)
    return doc


def test_a_sparse_lease_checks_out_only_its_folders_and_says_so(mono: Path) -> None:
    doc = acquire(mono, "a1", "--sparse", "svc/api")
    here = Path(str(doc["path"]))
    assert doc["sparse"] == ["svc/api"]
    assert files_of(here) == {"README", "top.txt", "svc/api/app.txt", "svc/api/deep/mod.txt"}
    assert git("status", "--porcelain", "--untracked-files=all", cwd=here) == "", "nothing outside reads as deleted"
    assert git("ls-tree", "-r", "--name-only", "HEAD", cwd=here).count("\n") == 6, "HEAD is the whole tree"
    listed = json.loads(gitxact("worktree", "list", "--json", cwd=mono).stdout)["leases"]
    assert [(item["agent"], item["sparse"]) for item in listed] == [("a1", ["svc/api"])]
    human = gitxact("worktree", "list", cwd=mono).stdout
    assert "SPARSE" in human
    assert "svc/api" in human
    whole = acquire(mono, "a2")
    assert whole["sparse"] == []
    assert "lib/core/util.txt" in files_of(Path(str(whole["path"])))


def test_the_files_sparse_is_the_default_and_no_sparse_overrides_it(mono: Path) -> None:
    (mono / ".gitxact.toml").write_text('[lease]\nsparse = ["lib"]\n')
    git("add", ".gitxact.toml", cwd=mono)
    git("commit", "-q", "-m", "sparse by default", cwd=mono)
    by_file = acquire(mono, "f1")
    assert by_file["sparse"] == ["lib"]
    assert "lib/core/util.txt" in files_of(Path(str(by_file["path"])))
    assert "svc/api/app.txt" not in files_of(Path(str(by_file["path"])))
    assert acquire(mono, "f2", "--sparse", "svc/web")["sparse"] == ["svc/web"], "--sparse wins over the file"
    full = acquire(mono, "f3", "--no-sparse")
    assert full["sparse"] == []
    assert "svc/api/app.txt" in files_of(Path(str(full["path"])))
    both = gitxact("worktree", "acquire", "f4", "--sparse", "lib", "--no-sparse", cwd=mono)
    assert both.returncode == 2
    assert "contradict" in both.stderr
    outside = gitxact("worktree", "acquire", "f5", "--sparse", "../elsewhere", cwd=mono)
    assert outside.returncode == 2
    assert "without '..'" in outside.stderr


def test_transactions_and_snapshots_in_a_sparse_lease_keep_the_rest_of_the_tree(mono: Path) -> None:
    doc = acquire(mono, "t1", "--sparse", "svc/api")
    here = Path(str(doc["path"]))
    assert gitxact("tx", "begin", cwd=here).returncode == 0
    (here / "svc/api/app.txt").write_text("edited\n")
    (here / "svc/api/new.txt").write_text("new\n")
    assert gitxact("tx", "savepoint", "edited", cwd=here).returncode == 0
    (here / "svc/api/app.txt").write_text("edited again\n")
    (here / "svc/api/new.txt").unlink()
    (here / "svc/api/later.txt").write_text("made after the savepoint\n")
    back = gitxact("tx", "rollback", "--to", "edited", cwd=here)
    assert back.returncode == 0, back.stderr
    assert (here / "svc/api/app.txt").read_text() == "edited\n"
    assert (here / "svc/api/new.txt").read_text() == "new\n"
    assert not (here / "svc/api/later.txt").exists()
    assert "lib/core/util.txt" not in files_of(here), "the rollback checked nothing out beyond the cone"
    status = git("status", "--porcelain", "--untracked-files=all", cwd=here).splitlines()
    assert sorted(status) == [" M svc/api/app.txt", "?? svc/api/new.txt"], "nothing outside reads as deleted"
    git("add", "-A", cwd=here)
    git("commit", "-q", "-m", "api work", cwd=here)
    assert gitxact("tx", "commit", cwd=here).returncode == 0
    tree = git("ls-tree", "-r", "--name-only", "HEAD", cwd=here).split()
    assert {"lib/core/util.txt", "svc/web/page.txt", "svc/api/new.txt"} <= set(tree), "the commit kept the rest"


def test_work_outside_the_cone_is_saved_by_release_and_restored(mono: Path) -> None:
    doc = acquire(mono, "s1", "--sparse", "svc/api")
    here = Path(str(doc["path"]))
    (here / "svc/api/app.txt").write_text("inside, uncommitted\n")
    (here / "lib/core").mkdir(parents=True)
    (here / "lib/core/util.txt").write_text("edited outside the cone\n")
    (here / "lib/core/extra.txt").write_text("made outside the cone\n")
    released = gitxact("worktree", "release", "s1", "--force", "--keep-branch", "--json", cwd=mono)
    assert released.returncode == 0, released.stderr
    ref = json.loads(released.stdout)["snapshot_ref"]
    saved = git("ls-tree", "-r", "--name-only", ref, cwd=mono).split()
    assert {"svc/web/page.txt", "top.txt", "lib/core/extra.txt"} <= set(saved), "not checked out is not deleted"
    assert git("show", f"{ref}:lib/core/util.txt", cwd=mono) == "edited outside the cone\n"
    assert git("show", f"{ref}:svc/web/page.txt", cwd=mono) == "svc/web/page.txt v1\n"
    again = acquire(mono, "s1", "--sparse", "svc/api")
    there = Path(str(again["path"]))
    name = ref.removeprefix("refs/gitxact/snapshots/")
    restored = gitxact("snapshots", "restore", name, "--into", "s1", cwd=mono)
    assert restored.returncode == 0, restored.stderr
    assert (there / "svc/api/app.txt").read_text() == "inside, uncommitted\n"
    assert (there / "lib/core/extra.txt").read_text() == "made outside the cone\n"
    assert (there / "lib/core/util.txt").read_text() == "edited outside the cone\n"
    assert not (there / "svc/web").exists(), "what is as HEAD has it outside the cone stays not checked out"
    status = sorted(git("status", "--porcelain", "--untracked-files=all", cwd=there).splitlines())
    assert status == [" M lib/core/util.txt", " M svc/api/app.txt", "?? lib/core/extra.txt"]


def test_tdd_land_and_release_in_a_sparse_lease(mono: Path) -> None:
    doc = acquire(mono, "d1", "--sparse", "svc/api")
    here = Path(str(doc["path"]))
    check = f"{sys.executable} svc/api/check.py"
    (here / "svc/api/check.py").write_text(
        "import pathlib, sys\nsys.exit(0 if pathlib.Path('svc/api/impl.txt').exists() else 1)\n"
    )
    red = gitxact("tdd", "red", "--check", check, "svc/api/check.py", cwd=here)
    assert red.returncode == 0, red.stderr
    (here / "svc/api/impl.txt").write_text("done\n")
    green = gitxact("tdd", "green", "--check", check, "svc/api/impl.txt", cwd=here)
    assert green.returncode == 0, green.stderr
    assert gitxact("tdd", "done", cwd=here).returncode == 0
    landed = gitxact("land", "--onto", "main", "--check", check, cwd=here)
    assert landed.returncode == 0, landed.stdout + landed.stderr
    main_tree = git("ls-tree", "-r", "--name-only", "main", cwd=mono).split()
    assert {"svc/api/impl.txt", "lib/core/util.txt", "svc/web/page.txt", "top.txt"} <= set(main_tree)
    released = gitxact("worktree", "release", "d1", "--token", str(doc["token"]), "--json", cwd=mono)
    assert released.returncode == 0, released.stderr
    assert not here.exists()
    assert git("branch", "--list", "gitxact/d1", cwd=mono) == "", "landed on main: its branch went"
    git("fsck", "--no-progress", cwd=mono)


def test_a_tdd_step_naming_a_folder_wider_than_the_cone_commits_no_deletion(mono: Path) -> None:
    doc = acquire(mono, "d2", "--sparse", "svc/api")
    here = Path(str(doc["path"]))
    check = f"{sys.executable} svc/api/check.py"
    (here / "svc/api/check.py").write_text(
        "import pathlib, sys\nsys.exit(0 if pathlib.Path('svc/api/app.txt').read_text() == 'v2\\n' else 1)\n"
    )
    red = gitxact("tdd", "red", "--check", check, "svc/api/check.py", cwd=here)
    assert red.returncode == 0, red.stderr
    (here / "svc/api/app.txt").write_text("v2\n")
    step = gitxact("tdd", "green", "--check", check, "svc", cwd=here)  # svc/web is outside the cone
    assert step.returncode == 0, step.stderr
    tree = git("ls-tree", "-r", "--name-only", "HEAD", cwd=here).split()
    assert {"lib/core/util.txt", "svc/web/page.txt", "svc/api/check.py"} <= set(tree), "not checked out is not deleted"
    assert git("show", "HEAD:svc/api/app.txt", cwd=here) == "v2\n"
    assert git("status", "--porcelain", "--untracked-files=all", cwd=here) == ""


@pytest.mark.parametrize("point", ["worktree-acquire-added", "worktree-acquire-checked-out"])
def test_a_sparse_acquire_killed_midway_is_undone_by_recover(mono: Path, point: str) -> None:
    crash = {"GITXACT_TEST_CRASHPOINT": point}
    killed = gitxact("worktree", "acquire", "k1", "--sparse", "svc/api", cwd=mono, env=crash)
    assert killed.returncode == -signal.SIGKILL
    recovered = gitxact("recover", cwd=mono)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert json.loads(gitxact("worktree", "list", "--json", cwd=mono).stdout)["leases"] == []
    assert git("worktree", "list", "--porcelain", cwd=mono).count("worktree ") == 1
    git("fsck", "--no-progress", cwd=mono)
    again = acquire(mono, "k1", "--sparse", "svc/api")
    assert files_of(Path(str(again["path"]))) == {"README", "top.txt", "svc/api/app.txt", "svc/api/deep/mod.txt"}
    assert git("status", "--porcelain", "--untracked-files=all", cwd=Path(str(again["path"]))) == ""


def test_the_library_lease_takes_sparse_folders_too(mono: Path) -> None:
    from gitxact import Workspace

    with Workspace(mono).worktrees.lease("lib1", sparse=["lib"], heartbeat=False) as wt:
        assert files_of(wt.path) == {"README", "top.txt", "lib/core/util.txt"}
        listed = json.loads(gitxact("worktree", "list", "--json", cwd=mono).stdout)["leases"]
        assert [item["sparse"] for item in listed] == [["lib"]]
    assert not wt.path.exists()
