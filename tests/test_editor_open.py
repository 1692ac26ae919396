"""A person's editor left open in one worktree delays no work in the others.

``gx commit`` without ``-m`` holds its worktree's lock while the editor is open. Other
worktrees' git, leasing new worktrees and releasing them go on; only writers in the
same worktree wait (and give up after ``gitxact.lockTimeout``, exit 75, naming the
holder), and repository-wide work (gc, recover, ``gitxact lock``) waits for it.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from support.proc import GITXACT, GX, git, gitxact, kill_group, run, wait_for_file


def _editor_open(repo: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    ready, release = tmp_path / "editor-ready", tmp_path / "editor-release"
    editor = tmp_path / "editor"
    editor.write_text(f'#!/bin/sh\ntouch {ready}\nwhile [ ! -e {release} ]; do sleep 0.05; done\necho msg > "$1"\n')
    editor.chmod(0o755)
    proc = subprocess.Popen(
        [*GX, "-c", f"core.editor={editor}", "commit", "--allow-empty"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_for_file(ready, "the editor to open", proc)
    return proc, release


def test_an_open_editor_holds_up_only_its_own_worktree(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    other = tmp_path / "other"
    git("worktree", "add", "-q", "-b", "other", str(other), cwd=repo)
    git("config", "gitxact.lockTimeout", "30", cwd=repo)
    commit, release = _editor_open(repo, tmp_path)
    waiting: subprocess.Popen[bytes] | None = None
    try:
        # Everything outside the editor's worktree goes on: other worktrees' git, leasing.
        (other / "new.txt").write_text("x\n")
        added = run([*GX, "add", "new.txt"], other)
        assert added.returncode == 0, added.stderr
        leased = gitxact("worktree", "acquire", "agent-1", "--json", cwd=repo)
        assert leased.returncode == 0, leased.stderr
        token = json.loads(leased.stdout)["token"]
        released = gitxact("worktree", "release", "agent-1", "--token", token, cwd=repo)
        assert released.returncode == 0, released.stderr
        # Repository-wide work waits for the editor, and holds up no other worktree meanwhile.
        waiting = subprocess.Popen([*GITXACT, "lock", "--", "true"], cwd=repo, start_new_session=True)
        wait_until = time.monotonic() + 60
        while not list((repo / ".git" / "gitxact" / "locks" / "repo.q").glob("*.x.h")):
            assert time.monotonic() < wait_until, "the repository-wide command never got the repository lock"
            time.sleep(0.02)
        committed = run([*GX, "commit", "-q", "-m", "other worktree"], other)
        assert committed.returncode == 0, committed.stderr
        assert waiting.poll() is None, "repository-wide work waits for the open editor"
        # A writer in the editor's own worktree waits for it, then gives up naming the holder.
        git("config", "gitxact.lockTimeout", "1", cwd=repo)
        same = run([*GX, "commit", "-q", "--allow-empty", "-m", "same worktree"], repo)
        assert same.returncode == 75, same.stderr
        assert "gx commit --allow-empty" in same.stderr or "held by" in same.stderr, same.stderr
        release.touch()
        assert commit.wait(timeout=60) == 0
        assert waiting.wait(timeout=60) == 0
    finally:
        release.touch()
        kill_group(commit)
        if waiting is not None:
            kill_group(waiting)
    assert git("log", "-1", "--format=%s", cwd=repo).strip() == "msg"
    git("fsck", "--strict", cwd=repo)
