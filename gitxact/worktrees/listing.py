"""``worktree list``: every lease with what a person needs to judge it.

Read-only: no lock is taken (state files are replaced atomically, git queries run
with ``GIT_OPTIONAL_LOCKS=0``), so listing never waits on, or disturbs, a busy agent.
Never shows a token or its hash.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError
from gitxact.git import run as git
from gitxact.git import snapshots
from gitxact.leases import records as leases
from gitxact.worktrees.reaper import real, registrations
from gitxact.worktrees.results import LeaseInfo, LeaseListDoc, OwnerDoc

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def owner_doc(lease: Lease) -> OwnerDoc:
    alive = None if not lease.owner.on_this_host else not lease.owner_dead()
    return OwnerDoc(pid=lease.owner_pid, host=lease.owner_host, alive=alive)


def collect(repo: Repo, *, details: bool = True) -> LeaseListDoc:
    """Every lease; *details* adds the per-worktree git queries (dirty, ahead/behind)."""
    now = time.time()
    records = leases.load(repo)
    entries = registrations(repo) if records else {}
    infos: list[LeaseInfo] = []
    for agent in sorted(records):
        lease = records[agent]
        entry = entries.get(real(lease.path))
        missing = not os.path.isdir(lease.path)
        info = LeaseInfo(
            agent=lease.agent,
            path=lease.path,
            branch=lease.branch,
            base=lease.base,
            phase=lease.phase,
            worktree_id=lease.worktree_id,
            owner=owner_doc(lease),
            created=round(lease.created, 3),
            age=round(max(0.0, now - lease.created), 3),
            heartbeat=round(lease.heartbeat, 3),
            heartbeat_age=round(max(0.0, now - lease.heartbeat), 3),
            ttl=lease.ttl,
            expired=lease.expired(now),
            live=lease.is_live(now),
            folder_missing=missing,
            registered=entry is not None,
            locked=entry is not None and entry.locked is not None,
        )
        if details and not missing and entry is not None:
            _add_details(repo, lease, info)
        infos.append(info)
    return LeaseListDoc(leases=infos)


def _add_details(repo: Repo, lease: Lease, info: LeaseInfo) -> None:
    try:
        info.dirty = snapshots.has_changes(Path(lease.path))
    except GitError:
        info.dirty = None
    base = lease.base
    if git.rev_parse(repo.layout.common_dir, f"{base}^{{commit}}") is None:
        base = lease.base_commit or ""  # the base branch was deleted: compare with where it was
    if not base:
        return
    counts = git.run(
        ["rev-list", "--left-right", "--count", f"{base}...refs/heads/{lease.branch}", "--"],
        repo.layout.common_dir,
        check=False,
        read_only=True,
    )
    parts = counts.stdout.split()
    if counts.ok and len(parts) == 2:
        info.behind, info.ahead = int(parts[0]), int(parts[1])
