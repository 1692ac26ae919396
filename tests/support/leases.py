"""Leases for the hook and guard tests.

``acquire`` is the real library acquire with a token the tests know
(``token-<agent>``), owned by the test process, so the lease is live for the test.
``release`` ends the lease record but leaves the folder as a plain, unlocked
worktree, so a test can then show that what was refused is allowed again on the
very same worktree (a real release would remove it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gitxact import Workspace
from gitxact.leases.records import leases_file
from support.proc import git, gitxact


def token(agent: str) -> str:
    return f"token-{agent}"


def acquire(repo: Path, agent: str, *, base: str = "main") -> Path:
    """Lease a new worktree and branch gitxact/<agent> to *agent*; return the worktree path."""
    doc = Workspace(repo).worktrees.acquire(agent, base=base, token=token(agent), owner_pid=os.getpid())
    return Path(doc.path)


def release(repo: Path, agent: str) -> None:
    """End *agent*'s lease: drop the record and unlock its worktree (which stays)."""
    ws = Workspace(repo)
    with ws.locks.resource("leases"):
        state_file = leases_file(ws)
        state = state_file.load(repair=True)
        lease = state.leases.pop(agent)
        state_file.save(state)
    if os.path.isdir(lease.path):
        git("worktree", "unlock", lease.path, cwd=repo)


def acquire_json(repo: Path, agent: str, *args: str, env: dict[str, str] | None = None) -> dict[str, object]:
    """``gitxact worktree acquire AGENT --json ARGS`` through the CLI; its document."""
    proc = gitxact("worktree", "acquire", agent, "--json", *args, cwd=repo, env=env)
    assert proc.returncode == 0, proc.stderr
    doc: dict[str, object] = json.loads(proc.stdout)
    return doc
