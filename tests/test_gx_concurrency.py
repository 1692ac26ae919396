"""Many writers through gx: nothing fails, nothing is lost, worktrees run in parallel."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import ROOT, git

WORKER = str(ROOT / "fixtures" / "gx_writer.py")


def _writers(jobs: list[tuple[Path, str]], count: int, tmp: Path, tool: str = "gx") -> list[dict[str, object]]:
    go = tmp / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "writer", str(wt), name, str(count), str(tmp / f"{name}.out"), str(go), tool]
        )
        for wt, name in jobs
    ]
    go.write_text("")
    for proc in procs:
        assert proc.wait(timeout=600) == 0
    return [json.loads(line) for _, name in jobs for line in (tmp / f"{name}.out").read_text().splitlines()]


def _fsck_clean(repo: Path) -> None:
    proc = subprocess.run(["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert not any(word in proc.stderr for word in ("error", "missing", "broken", "corrupt")), proc.stderr


@pytest.mark.slow
def test_six_writers_in_one_worktree_land_all_72_commits(repo: Path, tmp_path: Path) -> None:
    records = _writers([(repo, f"w{i}") for i in range(6)], 12, tmp_path)
    failed = [r for r in records if r["code"] != 0]
    assert failed == []
    assert len(records) == 6 * 12 * 2
    assert int(git("rev-list", "--count", "HEAD", cwd=repo)) == 1 + 72
    files = git("log", "--name-only", "--format=", cwd=repo).split()
    assert sorted(files) == sorted([f"w{i}-{j}.txt" for i in range(6) for j in range(12)] + ["README"])
    assert git("status", "--porcelain", cwd=repo) == ""
    _fsck_clean(repo)


BARRIER_HOOK = """#!/bin/sh
# The first commit of each worktree waits here until all {n} writers are inside a
# commit at the same time. gx holds the repository lock (shared) and the worktree's
# lock right now, so this only completes if those locks let the worktrees overlap.
me=$(basename "$PWD")
[ -e "{barrier}/$me" ] && exit 0
touch "{barrier}/$me"
i=0
while [ "$(ls "{barrier}" | wc -l)" -lt {n} ]; do
    i=$((i + 1)); [ $i -gt 6000 ] && {{ echo "barrier never filled" >&2; exit 1; }}
    sleep 0.02
done
"""


@pytest.mark.slow
def test_eight_worktrees_commit_in_parallel(repo: Path, tmp_path: Path) -> None:
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(BARRIER_HOOK.format(n=8, barrier=barrier))
    hook.chmod(0o755)
    jobs = []
    for i in range(8):
        path = tmp_path / f"wt{i}"
        git("worktree", "add", "-q", "-b", f"agent{i}", str(path), cwd=repo)
        jobs.append((path, f"wt{i}"))
    records = _writers(jobs, 4, tmp_path)
    assert [r for r in records if r["code"] != 0] == []
    assert len(list(barrier.iterdir())) == 8, "all eight writers were inside a commit at once"
    for i in range(8):
        assert int(git("rev-list", "--count", f"main..agent{i}", cwd=repo)) == 4
    _fsck_clean(repo)
