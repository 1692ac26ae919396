"""The pre-commit framework hook `gitxact-guard` (.pre-commit-hooks.yaml), with the real
`pre-commit` package: it installs this checkout (at HEAD) into its own virtualenv,
like any user's `.pre-commit-config.yaml` would, and runs `gitxact hook pre-commit`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import ROOT, git


def _pre_commit(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_gitxact_guard_with_the_pre_commit_framework(repo: Path, tmp_path: Path) -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("needs this checkout as a git repository")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    config = f"repos:\n  - repo: {ROOT}\n    rev: {head.stdout.strip()}\n    hooks:\n      - id: gitxact-guard\n"
    (repo / ".pre-commit-config.yaml").write_text(config)
    git("add", ".pre-commit-config.yaml", cwd=repo)
    git("commit", "-q", "-m", "pre-commit config", cwd=repo)
    alice = acquire(repo, "alice", base="main")
    home = tmp_path / "pre-commit-home"  # pip, virtualenv and friends write their caches under HOME
    env = {"PRE_COMMIT_HOME": str(tmp_path / "pre-commit-cache"), "HOME": str(home), "XDG_CACHE_HOME": str(home)}

    as_bob = _pre_commit(["run", "gitxact-guard", "--all-files"], alice, {**env, "GITXACT_AGENT": "bob"})
    assert as_bob.returncode == 1, as_bob.stdout + as_bob.stderr
    assert "leased to 'alice'" in as_bob.stdout
    as_alice = _pre_commit(["run", "gitxact-guard", "--all-files"], alice, {**env, "GITXACT_AGENT": "alice"})
    assert as_alice.returncode == 0, as_alice.stdout + as_alice.stderr
    shipped = list((tmp_path / "pre-commit-cache").glob("repo*/py_env-*/lib/python*/site-packages/gitxact/hooks"))
    assert shipped, "a regular (non-editable) install ships the hooks package"
    assert (shipped[0] / "hook-tmpl").is_file(), "and the hook template in it"

    installed = _pre_commit(["install"], alice, env)
    assert installed.returncode == 0, installed.stderr
    (alice / "work.txt").write_text("x\n")
    git("add", "work.txt", cwd=alice)
    commit = ["git", "commit", "-q", "-m", "work"]
    bob = subprocess.run(
        commit,
        cwd=alice,
        env={**os.environ, **env, "GITXACT_AGENT": "bob"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bob.returncode == 1
    assert "leased to 'alice'" in bob.stdout + bob.stderr
    ok = subprocess.run(
        commit,
        cwd=alice,
        env={**os.environ, **env, "GITXACT_AGENT": "alice"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
