"""Hostile input, generated, for what reaches git: branch names, base refs, savepoint names,
``--check`` commands, and random bytes in the transaction journal.

Never a traceback, exit 2 for bad input (1 for a failed operation, 3 for a refusal),
and a failed command leaves nothing behind outside gitxact's own folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.hostile import SETTINGS, run_cli, tree_snapshot
from support.proc import git

from gitxact.cli.main import main

#: Shapes that break naive code: ref syntax, option look-alikes, traversal, control bytes.
nasty = st.sampled_from(
    ["", "-", "--force", "../x", "a/../b", "a..b", "@{-1}", "@", "HEAD", "x.lock", "/abs", "a b", "é", "\n", "a\\b"]
)
names = nasty | st.text(max_size=40).filter(lambda text: "\x00" not in text)


def _worktree_root(repo: Path) -> Path:
    return repo.parent / f"{repo.name}.worktrees"


def _release_all(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _worktree_root(repo)
    for agent in sorted(os.listdir(root)) if root.is_dir() else []:
        if not agent.startswith("."):  # .gitxact-trash: no lease
            main(["worktree", "release", agent, "--force"])
    capsys.readouterr()
    # A release's files are deleted by a detached process after it returns: the next
    # example's "before" must not catch them half gone.
    trash = root / ".gitxact-trash"
    deadline = time.monotonic() + 60
    while _holds_files(trash):
        assert time.monotonic() < deadline, "the trash of a release was never emptied"
        time.sleep(0.05)


def _holds_files(trash: Path) -> bool:
    """Whether the trash still holds a file; a folder the deleter removes under the walk
    counts as not done yet (the next look tells)."""
    try:
        return trash.is_dir() and any(path.is_file() or path.is_symlink() for path in trash.rglob("*"))
    except FileNotFoundError:
        return True


def _acquire(inside: Path, capsys: pytest.CaptureFixture[str], codes: tuple[int, ...], *args: str) -> int:
    """Acquire with hostile *args*: an allowed exit, and a failure leaves no trace."""
    before = tree_snapshot(inside.parent)
    try:
        code, _, err = run_cli(capsys, "worktree", "acquire", "agent-x", *args)
        assert code in codes, err
        if code != 0:
            assert tree_snapshot(inside.parent) == before
        return code
    finally:
        _release_all(inside, capsys)


@SETTINGS
@given(branch=names)
def test_any_branch_name_for_acquire(inside: Path, capsys: pytest.CaptureFixture[str], branch: str) -> None:
    main_before = git("rev-parse", "refs/heads/main", cwd=inside)
    _acquire(inside, capsys, (0, 2, 3), "--branch", branch)
    assert git("rev-parse", "refs/heads/main", cwd=inside) == main_before
    git("fsck", "--no-progress", cwd=inside)


@SETTINGS
@given(base=names)
def test_any_base_ref_for_acquire(inside: Path, capsys: pytest.CaptureFixture[str], base: str) -> None:
    _acquire(inside, capsys, (0, 1, 2), "--base", base)


@SETTINGS
@given(name=names, target=names)
def test_any_transaction_and_savepoint_names(
    inside: Path, capsys: pytest.CaptureFixture[str], name: str, target: str
) -> None:
    (inside / "work.txt").write_text("uncommitted\n")
    code, _, err = run_cli(capsys, "tx", "begin", name)
    assert code in (0, 2), err
    if code != 0:
        return
    try:
        code, _, err = run_cli(capsys, "tx", "savepoint", name)
        assert code in (0, 2, 3), err
        (inside / "later.txt").write_text("after the savepoint\n")
        code, _, err = run_cli(capsys, "tx", "rollback", "--to", target)
        assert code in (0, 1, 2, 3), err
    finally:
        assert main(["tx", "rollback"]) == 0
        capsys.readouterr()
    assert (inside / "work.txt").read_text() == "uncommitted\n", "rollback restores what was there"
    assert not (inside / "later.txt").exists()
    refs = git("for-each-ref", "--format=%(refname)", "refs/gitxact/savepoints", cwd=inside).split()
    assert refs == [], "a closed transaction leaves no savepoint refs"


@pytest.fixture
def tiny_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PATH holding only git, sh and a few harmless programs, so a random --check cannot do harm."""
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in ("git", "sh", "true", "false", "echo", "cat", "test"):
        found = shutil.which(program)
        assert found is not None
        (bin_dir / program).symlink_to(found)
    monkeypatch.setenv("PATH", str(bin_dir))


checks = st.sampled_from(["true", "false", "sh -c 'exit 7'", "echo 'unterminated", "'' ''", "-x"]) | st.text(
    max_size=30
).filter(lambda text: "\x00" not in text)


@SETTINGS
@given(check=checks)
def test_any_check_command(inside: Path, tiny_path: None, capsys: pytest.CaptureFixture[str], check: str) -> None:
    head = git("rev-parse", "HEAD", cwd=inside).strip()
    (inside / "test_x.txt").write_text("a test\n")
    code, _, err = run_cli(capsys, "tdd", "red", "--check", check, "--timeout", "5", "test_x.txt")
    assert code in (0, 1, 2, 3), err
    if code == 0:
        assert git("log", "-1", "--format=%s", cwd=inside).startswith("TDD RED")
    main(["tdd", "abort"])
    capsys.readouterr()
    assert git("rev-parse", "HEAD", cwd=inside).strip() == head, "abort (or the refusal) leaves HEAD at the start"
    assert (inside / "test_x.txt").read_text() == "a test\n", "uncommitted work survives"
    (inside / "test_x.txt").unlink()


@SETTINGS
@given(blob=st.binary(max_size=400), name=st.sampled_from(["journal-main.json", "recover.json"]))
def test_random_bytes_in_the_journal(inside: Path, capsys: pytest.CaptureFixture[str], blob: bytes, name: str) -> None:
    state = inside / ".git" / "gitxact" / "state"
    head = git("rev-parse", "HEAD", cwd=inside).strip()
    try:
        assert main(["tx", "begin"]) == 0
        assert main(["tx", "commit"]) == 0
        assert main(["recover"]) == 0
        capsys.readouterr()
        (state / name).write_bytes(blob)
        for args in (["status", "--json"], ["tx", "list"], ["tx", "begin"], ["recover"], ["doctor"]):
            code, _, err = run_cli(capsys, *args)
            assert code in (0, 1, 3), (args, err)
        code, _, err = run_cli(capsys, "doctor", "--fix")
        assert code == 0, err
        code, _, err = run_cli(capsys, "doctor")
        assert code == 0, err
        code, _, err = run_cli(capsys, "tx", "begin")
        assert code in (0, 3), err  # 3: a transaction begun above is still open
        assert main(["tx", "rollback"]) == 0
    finally:
        for leftover in state.iterdir():
            leftover.unlink()
    assert git("rev-parse", "HEAD", cwd=inside).strip() == head
