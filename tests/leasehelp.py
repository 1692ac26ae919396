"""Leases for tests, made the way `gitxact worktree acquire` (issue 3) will make them.

The worktrees feature is built in parallel; until it lands, tests lease a worktree by
hand: `git worktree add --lock --reason ... -b gitxact/<agent>`, plus the Lease record
in state/leases.json written under the `leases` resource lock. Swap these two helpers
for `gitxact worktree acquire/release` once that exists.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import git

from gitxact import Workspace
from gitxact.identity import ProcessIdentity
from gitxact.leases import Lease, hash_token, leases_file


def acquire(repo: Path, agent: str, *, base: str = "main") -> Path:
    """Lease a new worktree and branch gitxact/<agent> to *agent*; return the worktree path."""
    path = repo.parent / f"{repo.name}.worktrees" / agent
    path.parent.mkdir(exist_ok=True)
    branch = f"gitxact/{agent}"
    git(
        "worktree",
        "add",
        "-q",
        "--lock",
        "--reason",
        f"gitxact lease: {agent}",
        "-b",
        branch,
        str(path),
        base,
        cwd=repo,
    )
    me = ProcessIdentity.current()
    now = time.time()
    ws = Workspace(repo)
    with ws.locks.resource("leases"):
        state_file = leases_file(ws)
        state = state_file.load(repair=True)
        state.leases[agent] = Lease(
            agent=agent,
            path=str(path),
            branch=branch,
            base=base,
            token_hash=hash_token(f"token-{agent}"),
            owner_pid=me.pid,
            owner_host=me.host,
            owner_start=me.start,
            created=now,
            heartbeat=now,
            ttl=3600,
            worktree_id=path.name,
        )
        state_file.save(state)
    return path


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
