"""``gitxact shim install``: `git` on PATH runs gx, for the shells and tools that type `git`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, run


@pytest.fixture
def shim_path(tmp_path: Path) -> str:
    """A PATH whose first `git` is gitxact's shim."""
    folder = tmp_path / "shim"
    proc = gitxact("shim", "install", str(folder), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["path"] == str(folder / "git")
    assert doc["path_line"] == f'export PATH="{folder}:$PATH"'
    return f"{folder}{os.pathsep}{os.environ['PATH']}"


def test_git_through_the_shim_is_git_with_locks(repo: Path, shim_path: str) -> None:
    env = {"PATH": shim_path}
    assert run(["git", "--version"], repo, env).stdout.startswith("git version ")
    version = run(["git", "--gx-version"], repo, env)
    assert version.returncode == 0
    assert "gitxact" in version.stdout
    assert "/shim/" not in version.stdout, "the real git, never the shim"
    assert run(["git", "-C", str(repo), "status", "--short"], repo.parent, env).returncode == 0
    git("config", "alias.st", "status --short", cwd=repo)
    assert run(["git", "st"], repo, env).returncode == 0
    (repo / "a.txt").write_text("a\n")
    assert run(["git", "add", "a.txt"], repo, env).returncode == 0
    assert run(["git", "commit", "-q", "-m", "through the shim"], repo, env).returncode == 0
    stats = (repo / ".git" / "gitxact" / "events" / "events.log").read_text()
    assert '"lock":"worktree.main"' in stats, "the commit took the worktree lock: it went through gx"


def test_writers_in_one_worktree_through_the_shim_all_land(repo: Path, shim_path: str, tmp_path: Path) -> None:
    loop = "".join(
        f'echo {i} > w{{n}}-{i}.txt && git add w{{n}}-{i}.txt && git commit -q -m "w{{n}} {i}" -- w{{n}}-{i}.txt && '
        for i in range(6)
    )
    procs = [
        subprocess.Popen(
            ["sh", "-c", loop.format(n=n) + "true"],
            cwd=repo,
            env={**os.environ, "PATH": shim_path},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for n in range(4)
    ]
    errors = [proc.communicate(timeout=300)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], errors
    subjects = git("log", "--format=%s", cwd=repo).splitlines()
    assert sorted(s for s in subjects if s.startswith("w")) == sorted(f"w{n} {i}" for n in range(4) for i in range(6))
    git("fsck", "--strict", cwd=repo)


def test_git_run_by_a_hook_goes_through_the_shim_without_waiting_for_its_parent(repo: Path, shim_path: str) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\nunset GIT_INDEX_FILE\necho h > hook.txt\ngit add hook.txt\n")
    hook.chmod(0o755)
    (repo / "b.txt").write_text("b\n")
    env = {"PATH": shim_path}
    assert run(["git", "add", "b.txt"], repo, env).returncode == 0
    proc = run(["git", "commit", "-q", "-m", "hooked"], repo, env)
    assert proc.returncode == 0, proc.stderr
    assert git("show", "--name-only", "--format=", "HEAD", cwd=repo).split() == ["b.txt", "hook.txt"]


def test_no_recursion_whatever_the_path(repo: Path, shim_path: str, tmp_path: Path) -> None:
    folder = shim_path.split(os.pathsep, maxsplit=1)[0]
    twice = f"{folder}{os.pathsep}{shim_path}"
    assert run(["git", "--version"], repo, {"PATH": twice}).returncode == 0
    alone = run([f"{folder}/git", "status"], repo, {"PATH": folder})
    assert alone.returncode != 0, "no real git to be found: a clear error, not a loop"
    assert "git was not found" in alone.stderr
    chosen = run(["git", "--gx-version"], repo, {"PATH": folder, "GITXACT_GIT": "/usr/bin/git"})
    assert chosen.returncode == 0
    assert "(/usr/bin/git)" in chosen.stdout


def test_install_never_replaces_what_is_not_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "git").write_text("#!/bin/sh\necho a real git\n")
    assert_clean_error(gitxact("shim", "install", str(folder), cwd=tmp_path), 3)
    assert (folder / "git").read_text() == "#!/bin/sh\necho a real git\n"
    assert_clean_error(gitxact("shim", "uninstall", str(folder), cwd=tmp_path), 3)
    assert (folder / "git").exists()
    other = tmp_path / "ours"
    assert gitxact("shim", "install", str(other), cwd=tmp_path).returncode == 0
    assert gitxact("shim", "install", str(other), cwd=tmp_path).returncode == 0, "refreshing our own shim"
    removed = gitxact("shim", "uninstall", str(other), cwd=tmp_path)
    assert removed.returncode == 0
    assert "removed" in removed.stdout
    assert not (other / "git").exists()


def test_default_folder_is_gitxacts_own_in_the_data_home(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = run([*GITXACT, "shim", "install"], tmp_path, {"XDG_DATA_HOME": str(data)})
    assert proc.returncode == 0, proc.stderr
    assert (data / "gitxact" / "bin" / "git").is_file()
    assert f'export PATH="{data}/gitxact/bin:$PATH"' in proc.stdout
