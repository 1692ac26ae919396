"""The guard: each destructive form is refused (exit 3) while a lease is active, and
runs once the lease is gone; forms that hurt no lease are never refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support.leases import acquire, release
from support.proc import GX, assert_clean_error, git, gitxact

FORMS = [
    ["gc", "-q"],
    ["prune"],
    ["worktree", "prune"],
    ["worktree", "remove", "{alice}"],
    ["worktree", "remove", "alice"],  # git also names a worktree by its last path component
    ["worktree", "move", "{alice}", "{moved}"],
    ["worktree", "unlock", "{alice}"],
    ["repack", "-q", "-d"],
    ["repack", "-q", "-a", "-d"],
    ["repack", "-q", "-ad"],
    ["maintenance", "run"],
    ["reflog", "expire", "--expire=now", "--all"],
    ["branch", "-D", "gitxact/alice"],
    ["branch", "--delete", "--force", "gitxact/alice"],
    ["branch", "-m", "gitxact/alice", "renamed"],
    ["update-ref", "-d", "refs/heads/gitxact/alice"],
    ["update-ref", "-d", "refs/gitxact/snapshots/alice/x"],
]


def _gx(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GX, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("form", FORMS, ids=[" ".join(f) for f in FORMS])
def test_refused_while_leased_then_allowed(repo: Path, form: list[str]) -> None:
    alice = acquire(repo, "alice")
    git("switch", "-q", "--detach", cwd=alice)  # so git itself would let the branch go
    git("update-ref", "refs/gitxact/snapshots/alice/x", "HEAD", cwd=repo)
    args = [word.format(alice=alice, moved=alice.parent / "moved") for word in form]
    refused = _gx(args, repo)
    assert_clean_error(refused, 3)
    assert "gitxact: error: refused:" in refused.stderr
    assert f"alice  {alice}  gitxact/alice" in refused.stderr
    assert os.path.isdir(alice)
    assert git("rev-parse", "--verify", "-q", "refs/heads/gitxact/alice", cwd=repo).strip()
    release(repo, "alice")
    allowed = _gx(args, repo)
    expected = 128 if form[:2] == ["worktree", "unlock"] else 0  # git: "is not locked"
    assert allowed.returncode == expected, allowed.stderr
    assert "gitxact: error" not in allowed.stderr


@pytest.mark.parametrize(
    "form",
    [
        ["worktree", "remove", "{other}"],
        ["branch", "-D", "side"],
        ["repack", "-q"],
        ["update-ref", "-d", "refs/heads/side"],
    ],
    ids=" ".join,
)
def test_forms_that_hurt_no_lease_run(repo: Path, tmp_path: Path, form: list[str]) -> None:
    acquire(repo, "alice")
    git("branch", "side", cwd=repo)
    git("worktree", "add", "-q", str(tmp_path / "other"), cwd=repo)
    proc = _gx([word.format(other=tmp_path / "other") for word in form], repo)
    assert proc.returncode == 0, proc.stderr


def test_gitxact_gc_refused_forced_and_allowed(repo: Path) -> None:
    alice = acquire(repo, "alice")
    refused = gitxact("gc", "-q", cwd=repo)
    assert_clean_error(refused, 3)
    assert f"alice  {alice}  gitxact/alice" in refused.stderr
    assert "--force" in refused.stderr
    forced = gitxact("gc", "--force", "-q", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    assert "--force" in forced.stderr  # a warning says what was overridden
    assert os.path.isdir(alice)
    release(repo, "alice")
    assert gitxact("gc", "-q", cwd=repo).returncode == 0


def test_refused_from_inside_the_leased_worktree_too(repo: Path) -> None:
    alice = acquire(repo, "alice")
    assert_clean_error(_gx(["gc"], alice), 3)


def test_auto_gc_is_off_for_wrapped_commands_while_leases_are_active(repo: Path, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f'#!/bin/sh\necho "$(git config gc.auto) $(git config maintenance.auto)" >> {seen}\n')
    hook.chmod(0o755)
    git("config", "gc.auto", "1", cwd=repo)
    assert _gx(["commit", "-q", "--allow-empty", "-m", "a"], repo).returncode == 0
    acquire(repo, "alice")
    assert _gx(["commit", "-q", "--allow-empty", "-m", "b"], repo).returncode == 0
    release(repo, "alice")
    assert _gx(["commit", "-q", "--allow-empty", "-m", "c"], repo).returncode == 0
    assert seen.read_text().splitlines() == ["1 ", "0 false", "1 "]
