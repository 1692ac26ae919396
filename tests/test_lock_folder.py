"""gitxact's lock folder under hostile conditions: a clear error, never a traceback, and doctor repairs it."""

from __future__ import annotations

from pathlib import Path

from support.proc import GITXACT, GX, assert_clean_error, gitxact, run


def test_a_symlinked_lock_file_is_a_clear_error_that_doctor_repairs(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    link = repo / ".git" / "gitxact" / "locks" / "repo.lock"
    if link.exists():
        link.unlink()
    link.symlink_to(target)
    # What needs the repository lock fails clearly; git work inside one worktree does not need it.
    assert run([*GX, "commit", "-q", "--allow-empty", "-m", "x"], repo).returncode == 0
    for argv in ([*GITXACT, "worktree", "acquire", "a"], [*GITXACT, "lock", "--", "true"]):
        proc = run(argv, repo)
        assert_clean_error(proc, 1)
        assert "repo.lock" in proc.stderr
        assert "internal error" not in proc.stderr
    report = gitxact("doctor", cwd=repo)
    assert report.returncode == 1
    assert "is a symbolic link" in report.stdout
    fixed = gitxact("doctor", "--fix", cwd=repo)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert not link.is_symlink()
    assert target.exists(), "only the link goes, never what it points at"
    assert run([*GITXACT, "lock", "--", "true"], repo).returncode == 0
    assert gitxact("doctor", cwd=repo).returncode == 0, "no dead ticket of the failed commands is left"
