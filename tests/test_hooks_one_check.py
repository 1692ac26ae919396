"""One Python per commit: what the pre-commit check vouches for, and what it never covers.

A leased agent's commit starts Python once (the pre-commit check, which also applies the
branch rule to HEAD's branch); its reference-transaction stays in ``sh`` for that one
update of that one git process. Everything else still gets the full check: a
``--no-verify`` commit, a ``git branch -f`` or ``update-ref``, a HEAD switched to another
branch while the commit waited in its editor, a forged or stale vouch, a rebase's final
branch update. The hooks' interpreter is wrapped by a script that logs each start, so
the tests count real Python processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.leases import acquire, acquire_json
from support.proc import git, gitxact, run

from gitxact.hooks.policy import HOOKS, VOUCH_FILE


@pytest.fixture
def started(repo: Path, tmp_path: Path) -> Path:
    """Hooks installed in *repo*, their Python wrapped to log "<hook> <state>" per start; the log."""
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    log = tmp_path / "python-starts.log"
    log.write_text("")
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\necho "$6 $7" >> {log}\nexec {sys.executable} "$@"\n')
    wrapper.chmod(0o755)
    for name in HOOKS:
        hook = repo / ".git" / "hooks" / name
        text = hook.read_text()
        assert f"PY='{sys.executable}'" in text
        hook.write_text(text.replace(f"PY='{sys.executable}'", f"PY='{wrapper}'"))
    return log


def starts(log: Path) -> list[str]:
    """The Python starts logged since the last call (and forget them)."""
    lines = [line.strip() for line in log.read_text().splitlines()]
    log.write_text("")
    return lines


def agent(name: str) -> dict[str, str]:
    return {"GITXACT_AGENT": name}


def leased_with_token(repo: Path, name: str) -> tuple[Path, str]:
    """A lease acquired through the CLI: its worktree and its token (shown once)."""
    doc = acquire_json(repo, name)
    return Path(str(doc["path"])), str(doc["token"])


def admin(worktree: Path) -> Path:
    """The worktree's own git dir (``.git/worktrees/NAME``), where the vouch is kept."""
    return Path((worktree / ".git").read_text().strip().removeprefix("gitdir: "))


def head(where: Path, ref: str = "HEAD") -> str:
    return git("rev-parse", ref, cwd=where).strip()


def test_a_leased_agents_commit_starts_python_once(repo: Path, started: Path) -> None:
    alice, secret = leased_with_token(repo, "alice")
    for env in (agent("alice"), agent("alice") | {"GITXACT_LEASE_TOKEN": secret}, {"GITXACT_LEASE_TOKEN": secret}):
        proc = run(["git", "commit", "-q", "--allow-empty", "-m", "alice's"], alice, env)
        assert proc.returncode == 0, proc.stderr
        assert starts(started) == ["pre-commit"], "the branch update is vouched for: no second Python"
    vouch = (admin(alice) / VOUCH_FILE).read_text()
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert vouch.startswith(f"{boot} ")
    assert vouch.endswith(" refs/heads/gitxact/alice\n")
    # Another process of alice's moving her branch ran no pre-commit: it is checked in full.
    moved = run(["git", "update-ref", "refs/heads/gitxact/alice", "HEAD~1"], alice, agent("alice"))
    assert moved.returncode == 0, moved.stderr
    assert starts(started) == ["reference-transaction prepared"]


def test_ref_updates_that_need_no_check_start_no_python(repo: Path, started: Path) -> None:
    alice = acquire(repo, "alice")
    assert starts(started) == [], "acquire's own git calls are gitxact's (GITXACT_INTERNAL)"
    person = run(["git", "commit", "-q", "--allow-empty", "-m", "a person's"], alice)
    assert person.returncode == 0, person.stderr
    detached = run(["git", "switch", "-q", "--detach"], alice, agent("alice"))
    assert detached.returncode == 0, detached.stderr
    on_head = run(["git", "commit", "-q", "--allow-empty", "-m", "detached"], alice, agent("alice"))
    assert on_head.returncode == 0, on_head.stderr
    tag = run(["git", "tag", "t1"], alice, agent("alice"))
    assert tag.returncode == 0, tag.stderr
    assert starts(started) == ["pre-commit"], "only the agent's commit is checked; HEAD and tags need nothing"


def test_no_verify_commit_in_another_agents_worktree_is_refused(repo: Path, started: Path) -> None:
    alice, _ = leased_with_token(repo, "alice")
    _, bobs = leased_with_token(repo, "bob")
    assert run(["git", "commit", "-q", "--allow-empty", "-m", "alice's"], alice, agent("alice")).returncode == 0
    assert (admin(alice) / VOUCH_FILE).exists(), "alice's vouch is there, for her own (finished) git"
    before = head(alice)
    for env, why in (
        (agent("bob"), "GITXACT_AGENT='bob'"),
        ({"GITXACT_LEASE_TOKEN": bobs}, "GITXACT_LEASE_TOKEN is not the token of the lease held by 'alice'"),
        (agent("alice") | {"GITXACT_LEASE_TOKEN": bobs}, "is not the token"),
    ):
        for argv in (
            ["commit", "-q", "--no-verify", "--allow-empty", "-m", "bob's"],
            ["commit", "-q", "--no-verify", "--amend", "--allow-empty", "-m", "bob's"],
        ):
            proc = run(["git", *argv], alice, env)
            assert proc.returncode != 0, argv
            assert "gitxact: ref update refused" in proc.stderr
            assert why in proc.stderr
            assert head(alice) == before
    assert starts(started) == ["pre-commit"] + ["reference-transaction prepared"] * 6


def test_moving_a_leased_branch_from_another_agents_process_is_refused(repo: Path, started: Path) -> None:
    alice, bob = acquire(repo, "alice"), acquire(repo, "bob")
    git("commit", "-q", "--allow-empty", "-m", "elsewhere", cwd=repo)
    ok = run(["git", "commit", "-q", "--allow-empty", "-m", "bob's own"], bob, agent("bob"))
    assert ok.returncode == 0, ok.stderr
    assert (admin(bob) / VOUCH_FILE).read_text().endswith(" refs/heads/gitxact/bob\n")
    git("switch", "-q", "--detach", cwd=alice)  # else git itself refuses to force a checked-out branch
    before = head(repo, "gitxact/alice")
    for where in (bob, repo, alice):
        for argv in (["branch", "-f", "gitxact/alice", "main"], ["update-ref", "refs/heads/gitxact/alice", "main"]):
            proc = run(["git", *argv], where, agent("bob"))
            assert proc.returncode != 0, (where, argv)
            assert "gitxact: ref update refused" in proc.stderr
            assert "GITXACT_AGENT='bob'" in proc.stderr
    assert head(repo, "gitxact/alice") == before


def test_a_forged_or_stale_vouch_lets_nobody_through(repo: Path, started: Path) -> None:
    """The vouch counts only for the git process it names: not a dead one, not a live other one."""
    alice = acquire(repo, "alice")
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    ours = Path(f"/proc/{os.getpid()}/stat").read_bytes()
    start = ours[ours.rfind(b")") + 1 :].split()[19].decode()
    before = head(alice)
    for key in (f"{boot} 1 1", f"{boot} {os.getpid()} {start}", f"{boot} {os.getpid()}", "x"):
        (admin(alice) / VOUCH_FILE).write_text(f"{key} refs/heads/gitxact/alice\n")
        proc = run(["git", "commit", "-q", "--no-verify", "--allow-empty", "-m", "bob's"], alice, agent("bob"))
        assert proc.returncode != 0, key
        assert "GITXACT_AGENT='bob'" in proc.stderr
    assert head(alice) == before


def test_a_head_switched_during_the_commit_is_checked_again(repo: Path, started: Path, tmp_path: Path) -> None:
    """bob's pre-commit vouched for his branch; while his editor is open his HEAD is pointed
    at alice's branch (at the same commit, so git's own old-value check passes): the update
    names another branch than the vouch, and the full check refuses it."""
    acquire(repo, "alice")
    bob = acquire(repo, "bob")
    assert head(repo, "gitxact/alice") == head(repo, "gitxact/bob")
    ready, go = tmp_path / "editor-ready", tmp_path / "editor-go"
    editor = tmp_path / "editor"
    wait = f"i=0; while [ ! -e {go} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"  # bounded: 60 s
    editor.write_text(f'#!/bin/sh\ntouch {ready}\n{wait}\necho "from bob" > "$1"\n')
    editor.chmod(0o755)
    proc = subprocess.Popen(
        ["git", "-c", f"core.editor={editor}", "commit", "--allow-empty"],
        cwd=bob,
        env={**os.environ, **agent("bob")},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the commit reached its editor, past pre-commit"
        assert (admin(bob) / VOUCH_FILE).read_text().endswith(" refs/heads/gitxact/bob\n")
        git("symbolic-ref", "HEAD", "refs/heads/gitxact/alice", cwd=bob)
        go.touch()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode != 0
    assert "gitxact: ref update refused" in err
    assert "refs/heads/gitxact/alice: it is leased to 'alice', but GITXACT_AGENT='bob'" in err
    assert head(repo, "gitxact/alice") == head(repo, "main")
    assert starts(started) == ["pre-commit", "reference-transaction prepared"]


def test_a_rebase_checks_only_its_branch_update(repo: Path, started: Path) -> None:
    """git runs reference-transaction about ten times a picked commit (HEAD, REBASE_HEAD,
    CHERRY_PICK_HEAD...); only the final update of the branch needs Python."""
    alice = acquire(repo, "alice")
    for i in range(5):
        (alice / f"f{i}.txt").write_text(f"{i}\n")
        git("add", f"f{i}.txt", cwd=alice)
        assert run(["git", "commit", "-q", "-m", f"c{i}"], alice, agent("alice")).returncode == 0
    git("commit", "-q", "--allow-empty", "-m", "main moves", cwd=repo)
    starts(started)
    before = head(alice)
    refused = run(["git", "rebase", "-q", "main"], alice, agent("bob"))
    assert refused.returncode != 0
    assert "refs/heads/gitxact/alice: it is leased to 'alice', but GITXACT_AGENT='bob'" in refused.stderr
    assert head(repo, "gitxact/alice") == before
    assert run(["git", "rebase", "--abort"], alice).returncode == 0
    assert starts(started) == ["reference-transaction prepared"]
    rebased = run(["git", "rebase", "-q", "main"], alice, agent("alice"))
    assert rebased.returncode == 0, rebased.stderr
    assert starts(started) == ["reference-transaction prepared"]
    assert head(alice, "HEAD~5") == head(repo, "main")
    assert git("symbolic-ref", "HEAD", cwd=alice).strip() == "refs/heads/gitxact/alice"
    git("fsck", "--no-dangling", cwd=repo)  # raises unless clean
