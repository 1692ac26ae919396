"""A lock outlives no process that works under it: a killed holder's child dies with it.

And gx removes an ``index.lock`` only when it is the leftover of a git that gitxact
itself started and saw die; any other (a live raw git's, or one a test put there to
stand for another git) is left alone, as git itself does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from support.proc import GITXACT, GX, git, kill_group, run, wait_for_file


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return handle.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")


def _gone_within(pid: int, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_killing_gitxact_lock_kills_the_command_it_runs_under_the_lock(repo: Path, tmp_path: Path) -> None:
    ready, child_pid = tmp_path / "ready", tmp_path / "pid"
    script = f"echo $$ > {child_pid}; touch {ready}; exec sleep 60"
    holder = subprocess.Popen([*GITXACT, "lock", "--", "sh", "-c", script], cwd=repo, start_new_session=True)
    try:
        wait_for_file(ready, "the command under the lock starting")
        pid = int(child_pid.read_text())
        os.kill(holder.pid, signal.SIGKILL)  # the holder alone, as an OOM killer would
        holder.wait()
        assert _gone_within(pid), "the command went on running after its lock was released"
    finally:
        kill_group(holder)  # type: ignore[arg-type]
    assert run(["git", "status"], repo).returncode == 0
    # The killed holder's record is cleared by the next holder of that lock, not left for doctor --fix.
    assert run([*GITXACT, "lock", "--", "true"], repo).returncode == 0
    doctor = run([*GITXACT, "doctor"], repo)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_killing_gx_kills_its_git_before_the_next_writer_gets_the_worktree(repo: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    editor = f"exec >/dev/null 2>&1; touch {ready}; sleep 60; :"
    gx = subprocess.Popen(
        [*GX, "-c", f"core.editor={editor}", "commit", "--allow-empty"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_file(ready, "git's editor starting")
        children = Path(f"/proc/{gx.pid}/task/{gx.pid}/children").read_text().split()
        assert children, "gx runs git as its child"
        git_pid = int(children[0])
        os.kill(gx.pid, signal.SIGKILL)
        gx.wait()
        assert _gone_within(git_pid), "a killed gx's git must not go on to commit under nobody's lock"
    finally:
        kill_group(gx)  # type: ignore[arg-type]
    # The next gx commit works: no lock is left behind that gitxact cannot account for.
    proc = run([*GX, "commit", "-q", "--allow-empty", "-m", "next"], repo)
    assert proc.returncode == 0, proc.stderr
    git("fsck", "--strict", cwd=repo)


def test_gx_leaves_an_index_lock_that_no_git_of_its_own_left(repo: Path) -> None:
    """git's own test suite makes an index.lock by hand to stand for another git: gx must respect it."""
    lock = repo / ".git" / "index.lock"
    lock.write_bytes(b"")
    (repo / "f.txt").write_text("x\n")
    proc = run([*GX, "add", "f.txt"], repo)
    assert proc.returncode != 0, "git refuses while index.lock exists, and so does gx"
    assert "index.lock" in proc.stderr
    assert lock.exists(), "gx must not remove a lock file it cannot prove is a leftover of its own git"


def test_gx_removes_the_index_lock_its_own_killed_git_left(repo: Path, tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    editor = f"exec >/dev/null 2>&1; touch {ready}; sleep 60; :"
    (repo / "README").write_text("changed\n")
    # `commit -a` takes index.lock and keeps it while the editor is open.
    gx = subprocess.Popen(
        [*GX, "-c", f"core.editor={editor}", "commit", "-a"], cwd=repo, stdin=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_for_file(ready, "git's editor starting")
        assert (repo / ".git" / "index.lock").exists()
        kill_group(gx)  # type: ignore[arg-type]  # gx, its git and the editor: a crash of the whole session
    finally:
        kill_group(gx)  # type: ignore[arg-type]
    assert (repo / ".git" / "index.lock").exists(), "the killed git left its lock"
    proc = run([*GX, "status", "--short"], repo)
    assert proc.returncode == 0
    after = run([*GX, "add", "README"], repo)
    assert after.returncode == 0, after.stderr
    assert "removed" in after.stderr
    assert "index.lock" in after.stderr
    assert not (repo / ".git" / "index.lock").exists()


def test_parallel_descendants_of_one_holder_take_its_lock_in_turn(repo: Path) -> None:
    """A pre-commit hook that runs four `gx add` at once under `gx commit`: all four land.

    Each inherits the commit's worktree lock (so none waits for its own ancestor), and
    they exclude each other (so none meets another's index.lock).
    """
    import sys

    hooks = repo / ".git" / "hooks"
    gx = " ".join([sys.executable, "-c", "'import sys; from gitxact.gx.main import main; sys.exit(main())'"])
    lines = ["#!/bin/sh", "set -e", "unset GIT_INDEX_FILE", "pids="]
    for i in range(4):
        lines += [f"echo {i} > hook-{i}.txt", f"({gx} add hook-{i}.txt) & pids=\"$pids $!\""]
    lines += ["for p in $pids; do wait $p; done", ""]
    hook = hooks / "pre-commit"
    hook.write_text("\n".join(lines))
    hook.chmod(0o755)
    (repo / "f.txt").write_text("f\n")
    git("add", "f.txt", cwd=repo)
    proc = run([*GX, "commit", "-q", "-m", "with a forking hook"], repo)
    assert proc.returncode == 0, proc.stderr
    assert "index.lock" not in proc.stderr
    # git commit reads the index again after pre-commit: what the hook added is committed.
    landed = git("show", "--name-only", "--format=", "HEAD", cwd=repo).split()
    landed += git("diff", "--cached", "--name-only", cwd=repo).split()
    assert sorted(set(landed) - {"f.txt"}) == [f"hook-{i}.txt" for i in range(4)], "every add of the hook landed"
    git("fsck", "--strict", cwd=repo)
