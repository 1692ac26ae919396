"""Provisioning at fleet speed (issue 19): acquires check out, and releases delete, outside the repository lock.

The repository lock covers only what must be serialized (the record, the folder, git's
registration and branch); the files are checked out under the new worktree's own
lock. To prove acquires made at once overlap their checkouts without timing anything,
a smudge filter on one file (the "gate") holds each checkout until N of them have
reached it: if checkouts were serialized, the first would wait for the others in vain
and the recorded intervals (``GITXACT_TEST_TRACE``) would not intersect. The same gate,
kept shut, holds a checkout still so it can be SIGKILLed in the middle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.proc import GITXACT, git, gitxact, kill_group, run_parallel, wait_for_file

from fixtures.repos import make_repo
from gitxact import Workspace

GATE = """#!/bin/sh
# A smudge filter: note that a checkout reached this file, wait until $GATE_N have (or a
# minute), then pass the content through.
touch "$GATE_DIR/started.$$"
n=0
while [ "$(ls "$GATE_DIR" | wc -l)" -lt "${GATE_N:-1}" ] && [ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done
exec cat
"""


@pytest.fixture
def gated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository of a few hundred files, one of which (``gate``) goes through the gate
    filter; the gate is open (``GATE_N=1``) unless a command is given a larger ``GATE_N``."""
    repo = make_repo(tmp_path / "repo", files=300)
    script = tmp_path / "gate.sh"
    script.write_text(GATE)
    script.chmod(0o755)
    (tmp_path / "gate").mkdir()
    monkeypatch.setenv("GATE_DIR", str(tmp_path / "gate"))
    monkeypatch.setenv("GATE_N", "1")
    (repo / ".gitattributes").write_text("gate filter=gate\n")
    (repo / "gate").write_text("through the gate\n")
    git("add", ".gitattributes", "gate", cwd=repo)
    git("commit", "-q", "-m", "gate", cwd=repo)
    git("config", "filter.gate.smudge", str(script), cwd=repo)
    gitxact("init", cwd=repo)
    return repo


def shut_gate() -> dict[str, str]:
    """The environment of an acquire whose checkout stops at the gate until :func:`open_gate`."""
    return {**os.environ, "GATE_N": "100"}


def open_gate(tmp_path: Path) -> None:
    for n in range(100):
        (tmp_path / "gate" / f"open.{n}").touch()


def wait_for_checkout(tmp_path: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("started.") for p in (tmp_path / "gate").iterdir()):
        assert proc.poll() is None, "the acquire ended before its checkout reached the gate"
        assert time.monotonic() < deadline, "no checkout reached the gate"
        time.sleep(0.02)


def intervals(trace: Path, start: str, end: str) -> dict[str, tuple[int, int]]:
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    began = {e["agent"]: e["ns"] for e in events if e["event"] == start}
    ended = {e["agent"]: e["ns"] for e in events if e["event"] == end}
    return {agent: (began[agent], ended[agent]) for agent in began}


def worktree_blocks(repo: Path) -> list[str]:
    return [b for b in git("worktree", "list", "--porcelain", cwd=repo).split("\n\n") if b.strip()]


def assert_whole(repo: Path) -> None:
    """fsck clean, doctor clean."""
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    doctor = gitxact("doctor", cwd=repo)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def assert_nothing_left(repo: Path, agent: str) -> None:
    assert Workspace(repo).worktrees.list().leases == []
    assert len(worktree_blocks(repo)) == 1, "only the main worktree"
    root = repo.parent / "repo.worktrees"
    assert not root.exists() or list(root.iterdir()) == []
    assert f"gitxact/{agent}" not in git("branch", "--list", cwd=repo)
    assert_whole(repo)


def test_eight_acquires_at_once_overlap_their_checkouts(
    gated: Path, tmp_path: Path, owner: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    trace = tmp_path / "trace.jsonl"
    monkeypatch.setenv("GITXACT_TEST_TRACE", str(trace))
    monkeypatch.setenv("GATE_N", "8")  # each checkout waits at the gate until all 8 got there
    agents = [f"agent-{i}" for i in range(8)]
    commands = [[*GITXACT, "worktree", "acquire", a, "--json", "--owner-pid", str(owner)] for a in agents]
    results = run_parallel(commands, gated, timeout=300)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results if r.returncode]
    docs = [json.loads(r.stdout) for r in results]

    # Every checkout was in progress at one same moment: the last to start began before the first ended.
    checkouts = intervals(trace, "checkout-start", "checkout-end")
    assert sorted(checkouts) == agents
    assert max(start for start, _ in checkouts.values()) < min(end for _, end in checkouts.values())

    paths = {str(d["path"]) for d in docs}
    assert len(paths) == 8
    linked = [b for b in worktree_blocks(gated) if not b.startswith(f"worktree {gated}\n")]
    assert len(linked) == 8
    assert all("\nlocked gitxact lease " in b for b in linked), linked
    for doc in docs:
        path = Path(str(doc["path"]))
        assert git("status", "--porcelain", cwd=path) == "", "the checkout is whole"
        assert (path / "gate").read_text() == "through the gate\n"
        assert (path / "d99" / "f00299.txt").is_file()
    leases = Workspace(gated).worktrees.list().leases
    assert sorted(lease.agent for lease in leases) == agents
    assert {lease.phase for lease in leases} == {"active"}
    assert_whole(gated)

    released = run_parallel(
        [[*GITXACT, "worktree", "release", str(d["agent"]), "--token", str(d["token"])] for d in docs], gated
    )
    assert all(r.returncode == 0 for r in released), [r.stderr for r in released if r.returncode]
    assert sorted(intervals(trace, "empty-start", "empty-end")) == agents
    assert all(not Path(p).exists() for p in paths)
    assert Workspace(gated).worktrees.list().leases == []
    assert len(worktree_blocks(gated)) == 1
    assert_whole(gated)


def test_the_whole_repository_waits_for_a_checkout_in_progress(gated: Path, tmp_path: Path, owner: int) -> None:
    """`gitxact lock` (gc, recover: the whole repository) lists the worktrees once it holds
    the repository lock, so a worktree whose checkout is still running is one it waits for."""
    stuck = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "slow", "--owner-pid", str(owner)],
        cwd=gated,
        env=shut_gate(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_checkout(tmp_path, stuck)
        busy = gitxact("lock", "--timeout", "1", "--", "true", cwd=gated)
        assert busy.returncode == 75, busy.stderr
        assert stuck.poll() is None, "the checkout is still running"
        open_gate(tmp_path)
        assert stuck.wait(timeout=120) == 0
        assert gitxact("lock", "--timeout", "60", "--", "true", cwd=gated).returncode == 0
    finally:
        kill_group(stuck)  # type: ignore[arg-type]
    assert_whole(gated)


def test_an_acquire_whose_checkout_hangs_holds_up_no_other_acquire(gated: Path, tmp_path: Path, owner: int) -> None:
    stuck = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "slow", "--owner-pid", str(owner)],
        cwd=gated,
        env=shut_gate(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_checkout(tmp_path, stuck)
        quick = gitxact("worktree", "acquire", "quick", "--json", "--owner-pid", str(owner), cwd=gated)
        assert quick.returncode == 0, quick.stderr
        assert stuck.poll() is None, "the first acquire is still checking out"
        listed = {lease.agent: lease.phase for lease in Workspace(gated).worktrees.list().leases}
        assert listed == {"slow": "provisioning", "quick": "active"}
        # A reap meanwhile sees an acquire at work, not an abandoned one.
        reap = json.loads(gitxact("worktree", "reap", "--json", cwd=gated).stdout)
        assert reap["ended"] == []
        assert "acquire is running" in reap["kept"]["slow"]
        open_gate(tmp_path)
        assert stuck.wait(timeout=120) == 0
    finally:
        kill_group(stuck)  # type: ignore[arg-type]
    assert {lease.phase for lease in Workspace(gated).worktrees.list().leases} == {"active"}
    assert_whole(gated)


@pytest.mark.parametrize(
    "command",
    [["recover"], ["doctor", "--fix"], ["worktree", "reap"], ["worktree", "acquire", "k"]],
)
def test_a_sigkill_during_the_checkout_is_undone(gated: Path, tmp_path: Path, command: list[str]) -> None:
    proc = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "k"],
        cwd=gated,
        env=shut_gate(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_checkout(tmp_path, proc)
    finally:
        kill_group(proc)  # type: ignore[arg-type]  # gitxact, its git and the filter: all of them
    path = gated.parent / "repo.worktrees" / "k"
    assert (path / ".git").is_file()
    assert not (gated / ".git" / "worktrees" / "k" / "index").exists(), "killed before the checkout finished"
    assert [lease.phase for lease in Workspace(gated).worktrees.list().leases] == ["provisioning"]
    open_gate(tmp_path)

    done = gitxact(*command, cwd=gated)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    if command[0] == "worktree" and command[1] == "acquire":  # a whole worktree stands in its place
        assert git("status", "--porcelain", cwd=path) == ""
        assert (path / "gate").read_text() == "through the gate\n"
        assert [lease.phase for lease in Workspace(gated).worktrees.list().leases] == ["active"]
        assert_whole(gated)
    else:
        assert not path.exists()
        assert git("for-each-ref", "refs/gitxact/snapshots/", cwd=gated) == "", "git's own files are not work"
        assert_nothing_left(gated, "k")


def test_a_file_put_in_a_half_checked_out_worktree_is_saved_before_it_goes(gated: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "k"],
        cwd=gated,
        env=shut_gate(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_checkout(tmp_path, proc)
    finally:
        kill_group(proc)  # type: ignore[arg-type]
    path = gated.parent / "repo.worktrees" / "k"
    (path / "notes.txt").write_text("someone's\n")
    done = gitxact("recover", "--json", cwd=gated)
    assert done.returncode == 0, done.stdout + done.stderr
    saved = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/k/", cwd=gated).split()
    assert len(saved) == 1
    assert git("show", f"{saved[0]}:notes.txt", cwd=gated) == "someone's\n"
    assert not path.exists()


def test_a_checkout_that_outlives_its_killed_acquire_is_left_alone_until_it_ends(gated: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "k"],
        cwd=gated,
        env=shut_gate(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_checkout(tmp_path, proc)
        os.kill(proc.pid, signal.SIGKILL)  # gitxact alone: its git goes on checking out
        proc.wait()
        path = gated.parent / "repo.worktrees" / "k"
        reap = json.loads(gitxact("worktree", "reap", "--json", cwd=gated).stdout)
        assert reap["ended"] == [], "never undone under a git still writing there"
        assert "still works there" in reap["kept"]["k"]
        assert path.is_dir()
        open_gate(tmp_path)
        deadline = time.monotonic() + 120
        while True:  # the git ends on its own; then the next reap undoes the acquire
            reap = json.loads(gitxact("worktree", "reap", "--json", cwd=gated).stdout)
            if reap["ended"]:
                break
            assert time.monotonic() < deadline, reap
            time.sleep(0.2)
        assert [(e["agent"], e["action"], e["error"]) for e in reap["ended"]] == [("k", "undo-acquire", None)]
    finally:
        kill_group(proc)  # type: ignore[arg-type]
    assert_nothing_left(gated, "k")


ACQUIRE_CRASHES = ["worktree-acquire-registered", "worktree-acquire-checked-out"]


@pytest.mark.parametrize("point", ACQUIRE_CRASHES)
def test_an_acquire_killed_after_registering_is_undone_by_recover(repo: Path, point: str) -> None:
    proc = gitxact("worktree", "acquire", "a", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL
    assert [lease.phase for lease in Workspace(repo).worktrees.list().leases] == ["provisioning"]
    done = gitxact("recover", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout
    actions = [a for step in json.loads(done.stdout)["steps"] for a in step["actions"]]
    assert any(a.startswith("undo-acquire a") for a in actions), actions
    assert_nothing_left(repo, "a")
    again = gitxact("worktree", "acquire", "a", "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["path"] == str(repo.parent / "repo.worktrees" / "a")


RELEASE_CRASHES = ["worktree-end-removing", "worktree-end-emptying", "worktree-end-emptied"]


@pytest.mark.parametrize("keep", [False, True])
@pytest.mark.parametrize("point", RELEASE_CRASHES)
def test_a_release_killed_while_deleting_files_is_finished_with_the_work_saved(
    repo: Path, point: str, keep: bool
) -> None:
    doc = json.loads(gitxact("worktree", "acquire", "a", "--json", cwd=repo).stdout)
    path = Path(str(doc["path"]))
    (path / "wip.txt").write_text("precious\n")
    (path / "sub").mkdir()
    (path / "sub" / "more.txt").write_text("more\n")
    args = ["--keep-branch"] if keep else []
    proc = gitxact("worktree", "release", "a", "--force", *args, cwd=repo, env={"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode == -signal.SIGKILL
    assert [lease.phase for lease in Workspace(repo).worktrees.list().leases] == ["removing"]
    done = gitxact("recover", "--json", cwd=repo)
    assert done.returncode == 0, done.stdout
    actions = [a for step in json.loads(done.stdout)["steps"] for a in step["actions"]]
    assert any(a.startswith("finish-release a") for a in actions), actions
    assert not path.exists()
    saved = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/a/", cwd=repo).split()
    assert len(saved) == 1, "saved once, before any file went; never again from a half-emptied folder"
    assert git("show", f"{saved[0]}:wip.txt", cwd=repo) == "precious\n"
    assert git("show", f"{saved[0]}:sub/more.txt", cwd=repo) == "more\n"
    assert ("gitxact/a" in git("branch", "--list", cwd=repo)) is keep
    assert Workspace(repo).worktrees.list().leases == []
    assert len(worktree_blocks(repo)) == 1
    assert_whole(repo)


def test_a_release_holds_no_repository_lock_while_it_waits_for_and_empties_its_worktree(
    repo: Path, tmp_path: Path
) -> None:
    doc = json.loads(gitxact("worktree", "acquire", "a", "--json", cwd=repo).stdout)
    ready = tmp_path / "held"
    # Someone works in a's worktree (holding its lock, as gx does) while a's release is asked for.
    hold = (
        "import pathlib, sys, time; from gitxact import Workspace\n"
        "with Workspace(sys.argv[1]).worktree_lock():\n"
        "    pathlib.Path(sys.argv[2]).touch(); time.sleep(30)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(doc["path"]), str(ready)], cwd=repo, start_new_session=True
    )
    release = None
    try:
        wait_for_file(ready, "the worktree lock to be held", holder)
        release = subprocess.Popen(
            [*GITXACT, "worktree", "release", "a", "--token", str(doc["token"])],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        time.sleep(0.5)
        other = gitxact("worktree", "acquire", "b", "--json", "--timeout", "20", cwd=repo)
        assert other.returncode == 0, other.stderr
        assert release.poll() is None, "the release still waits for a's worktree"
    finally:
        kill_group(holder)  # type: ignore[arg-type]
    assert release is not None
    out, err = release.communicate(timeout=60)
    assert release.returncode == 0, out + err
    assert [lease.agent for lease in Workspace(repo).worktrees.list().leases] == ["b"]


_LISTER = """
import sys
from gitxact.git import run as git
from pathlib import Path
for _ in range(int(sys.argv[2])):
    git.list_worktrees(Path(sys.argv[1]))
"""


def test_listing_while_worktrees_are_added_never_fails(tmp_path: Path, owner: int) -> None:
    """`git worktree add` writes its admin folder in steps; a `git worktree list` meeting one
    half-written fails ("failed to read worktrees/<id>/commondir"). gitxact's listing asks
    again (seen in the demo before: one agent in five runs failed at acquire)."""
    repo = make_repo(tmp_path / "repo")
    gitxact("init", cwd=repo)
    listers = [subprocess.Popen([sys.executable, "-c", _LISTER, str(repo), "150"]) for _ in range(2)]
    acquires = [
        subprocess.Popen([*GITXACT, "worktree", "acquire", f"a{n}", "--owner-pid", str(owner)], cwd=repo)
        for n in range(8)
    ]
    assert [p.wait(timeout=300) for p in acquires] == [0] * 8
    assert [p.wait(timeout=300) for p in listers] == [0, 0]
    assert len(Workspace(repo).worktrees.list().leases) == 8
