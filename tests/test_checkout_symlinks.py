"""Issue 25, part 4: nothing gitxact writes into a worktree goes through a symlink the checkout brought.

`--base` (or Claude Code's `source_ref`) may name any commit; in it `conf` may be a
symbolic link to a folder outside the repository. The `.worktreeinclude` copy of the
main worktree's ignored `conf/secret.env` must then be skipped and reported, and the
outside folder stay empty. Real git, real `gitxact` processes.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support.proc import git, gitxact
from test_claude_code import claude, created

from gitxact.util.beneath import ThroughSymlinkError, copy_beneath


def commit_with_link(repo: Path, name: str, target: Path) -> str:
    """A commit on top of HEAD where *name* is a symlink to *target* (plumbing: the main
    worktree, with its real `conf/` folder, is left as it is)."""
    index = repo / ".git" / "link-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}

    def plumb(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(
            ["git", *args], cwd=repo, env=env, input=stdin, capture_output=True, text=True, check=True
        ).stdout.strip()

    plumb("read-tree", "HEAD")
    blob = plumb("hash-object", "-w", "--stdin", stdin=str(target))
    plumb("update-index", "--add", "--cacheinfo", f"120000,{blob},{name}")
    tree = plumb("write-tree")
    index.unlink()
    return plumb("commit-tree", tree, "-p", "HEAD", "-m", f"{name} is a link to {target}")


@pytest.fixture
def secrets(repo: Path) -> Path:
    """The main worktree: `conf/secret.env` and `.env` ignored, both named by `.worktreeinclude`."""
    (repo / ".gitignore").write_text("conf/secret.env\n.env\n")
    (repo / ".worktreeinclude").write_text("conf/secret.env\n.env\n")
    git("add", ".gitignore", ".worktreeinclude", cwd=repo)
    git("commit", "-q", "-m", "ignore the secrets", cwd=repo)
    (repo / "conf").mkdir()
    (repo / "conf" / "secret.env").write_text("TOKEN=main-worktree-secret\n")
    (repo / ".env").write_text("API=1\n")
    return repo


def test_a_folder_link_in_the_base_is_never_written_through(secrets: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    base = commit_with_link(secrets, "conf", outside)

    proc = gitxact("worktree", "acquire", "a", "--base", base, "--json", cwd=secrets)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert list(outside.iterdir()) == [], "nothing written into the folder the link points at"
    assert doc["include_skipped"] == ["conf/secret.env"]
    assert doc["included"] == [".env"], "what is not behind a link is still copied"
    assert "conf/secret.env goes through a symbolic link" in proc.stderr
    wt = Path(doc["path"])
    assert os.readlink(wt / "conf") == str(outside), "the checkout's link itself is left as git made it"
    assert (wt / ".env").read_text() == "API=1\n"

    human = gitxact("worktree", "acquire", "b", "--base", base, cwd=secrets)
    assert human.returncode == 0, human.stderr
    assert "not copied (a symbolic link on the way): conf/secret.env" in human.stdout
    assert list(outside.iterdir()) == []


def test_what_is_no_file_is_not_copied_and_stops_nothing(secrets: Path) -> None:
    """A FIFO the main worktree holds (ignored, named): skipped; the acquire and the rest go on."""
    (secrets / ".worktreeinclude").write_text("conf/secret.env\n.env\npipe\n")
    (secrets / ".gitignore").write_text("conf/secret.env\n.env\npipe\n")
    git("commit", "-q", "-am", "a pipe too", cwd=secrets)
    os.mkfifo(secrets / "pipe")
    proc = gitxact("worktree", "acquire", "a", "--json", cwd=secrets)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["included"] == [".env", "conf/secret.env"]
    assert not os.path.lexists(Path(doc["path"]) / "pipe")


def test_a_link_as_the_destination_itself_is_not_followed(secrets: Path, tmp_path: Path) -> None:
    planted = tmp_path / "outside" / "planted.env"
    planted.parent.mkdir()
    base = commit_with_link(secrets, ".env", planted)  # a dangling link: following it would create the file

    proc = gitxact("worktree", "acquire", "a", "--base", base, "--json", cwd=secrets)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert not os.path.lexists(planted)
    assert doc["include_skipped"] == [".env"]
    assert doc["included"] == ["conf/secret.env"]
    assert os.readlink(Path(doc["path"]) / ".env") == str(planted)


def test_claude_codes_source_ref_is_held_to_the_same_rule(secrets: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    base = commit_with_link(secrets, "conf", outside)
    result = claude(secrets, "create", {**created(secrets, "cc"), "source_ref": base})
    assert result["rc"] == 0, result["stderr"]
    assert list(outside.iterdir()) == []
    assert "conf/secret.env goes through a symbolic link" in result["stderr"]
    assert (Path(result["stdout"].strip()) / ".env").read_text() == "API=1\n"


def test_a_link_swapped_in_on_the_way_is_refused_at_every_depth(tmp_path: Path) -> None:
    """The primitive under every such write: each folder opened no-follow, the file O_EXCL."""
    origin = tmp_path / "origin.txt"
    origin.write_text("payload\n")
    os.chmod(origin, 0o640)
    root, outside = tmp_path / "wt", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    outside.mkdir()
    (root / "a" / "b" / "c").symlink_to(outside)
    with pytest.raises(ThroughSymlinkError) as caught:
        copy_beneath(origin, root, "a/b/c/d/file.txt")
    assert caught.value.where == "a/b/c"
    assert list(outside.iterdir()) == []

    copy_beneath(origin, root, "a/b/new/file.txt")  # missing folders are made, the mode kept
    copied = root / "a" / "b" / "new" / "file.txt"
    assert copied.read_text() == "payload\n"
    assert copied.stat().st_mode & 0o777 == 0o640
    with pytest.raises(FileExistsError):
        copy_beneath(origin, root, "a/b/new/file.txt")
    with pytest.raises(ValueError, match="not a path inside"):
        copy_beneath(origin, root, "a/../../escape.txt")
