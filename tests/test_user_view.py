"""What people see: colors on a terminal only (and never with NO_COLOR), the status table,
lock-wait progress, help with examples on every command, shell completion."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import time
from pathlib import Path

import click
import pytest
from support.proc import GITXACT, git, gitxact

from gitxact.cli.main import cli


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run the CLI with stdout on a pseudo-terminal; return what it wrote there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, stdout=follower, stderr=subprocess.PIPE, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side is closed and drained
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode()
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)


@pytest.fixture
def busy(repo: Path) -> Path:
    """A repository with a lease holding uncommitted work and a counter."""
    assert gitxact("init", cwd=repo).returncode == 0
    doc = json.loads(gitxact("worktree", "acquire", "alice", "--json", cwd=repo).stdout)
    (Path(doc["path"]) / "draft.txt").write_text("wip\n")
    assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0
    return repo


def test_status_colors_only_on_a_terminal_and_never_with_no_color(busy: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    colored = on_a_terminal([*GITXACT, "status"], busy, env)
    assert "\x1b[" in colored
    assert "alice" in colored
    plain = on_a_terminal([*GITXACT, "status"], busy, {**env, "NO_COLOR": "1"})
    assert "\x1b[" not in plain

    def words(text: str) -> list[str]:  # ages and times change between the two runs
        return [word for word in text.split() if not any(ch.isdigit() for ch in word)]

    assert words(click.unstyle(colored)) == words(plain), "the same table, only the colors differ"
    piped = subprocess.run([*GITXACT, "status"], cwd=busy, env=env, capture_output=True, text=True, check=False)
    assert "\x1b[" not in piped.stdout


def test_status_table_shows_lease_work_and_heartbeat(busy: Path) -> None:
    out = gitxact("status", "--dirty", cwd=busy).stdout
    line = next(line for line in out.splitlines() if line.strip().startswith("alice"))
    assert "dirty" in line
    assert "heartbeat" in line
    assert "live" in line
    quick = gitxact("status", cwd=busy).stdout
    line = next(line for line in quick.splitlines() if line.strip().startswith("alice"))
    assert "dirty" not in line, "not looked at without --dirty, and never shown as a guess"
    assert "live" in line
    assert "gitxact status --dirty" in quick, "the table says the work was not looked at, and how to"
    doc = json.loads(gitxact("status", "--json", cwd=busy).stdout)
    assert doc["schema"] == 1
    assert doc["leases"][0]["dirty"] is True
    assert {"repository", "locks", "leases", "transactions", "last_recover", "state_files"} <= set(doc)


def test_a_long_lock_wait_names_the_holder_then_shows_progress(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    holder = subprocess.Popen(
        [*GITXACT, "lock", "--", "sh", "-c", f"touch {marker}; sleep 3"],
        cwd=repo,
        env={**os.environ, "GITXACT_AGENT": "slowpoke"},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():
            assert time.monotonic() < deadline, "the holder never got the lock"
            time.sleep(0.05)
        waiter = gitxact("lock", "--timeout", "30", "--", "true", cwd=repo)
    finally:
        holder.wait(timeout=30)
    assert waiter.returncode == 0, waiter.stderr
    first, *rest = waiter.stderr.splitlines()
    assert first.startswith("gitxact: waiting for the repository lock")
    assert f"pid {holder.pid}" in first
    assert "slowpoke" in first
    assert "." in "".join(rest), "a progress indicator while waiting (dots when not on a terminal)"
    assert "gitxact: got the repository lock after" in waiter.stderr


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    found: list[tuple[tuple[str, ...], click.Command]] = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(_commands(command, path))
    return found


@pytest.mark.parametrize("path", [p for p, c in _commands(cli) if p != ("git",)], ids=" ".join)
def test_every_command_and_subcommand_help_has_an_example(repo: Path, path: tuple[str, ...]) -> None:
    proc = gitxact(*path, "--help", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "Example" in proc.stdout
    assert "gitxact " + " ".join(path) in proc.stdout, "the example shows this very command"


def test_shell_completion(repo: Path) -> None:
    def complete(words: str, index: int) -> list[str]:
        env = {**os.environ, "_GITXACT_COMPLETE": "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        proc = subprocess.run(GITXACT, cwd=repo, env=env, capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        return [line.split(",", 1)[1] for line in proc.stdout.splitlines()]

    assert "worktree" in complete("gitxact wor", 1)
    assert complete("gitxact worktree acq", 2) == ["acquire"]
    script = subprocess.run(
        GITXACT, env={**os.environ, "_GITXACT_COMPLETE": "bash_source"}, capture_output=True, text=True, check=False
    )
    assert "_gitxact_completion" in script.stdout


def test_version(repo: Path) -> None:
    from gitxact import __version__

    proc = gitxact("--version", cwd=repo)
    assert proc.returncode == 0
    assert __version__ in proc.stdout
    assert git("--version", cwd=repo).startswith("git version")
