"""An unfinished lease (``provisioning``, ``releasing``, ``removing``): still at work, or abandoned?

Which unfinished record is abandoned: the repository lock proves it for a
``provisioning`` record with no worktree yet (its acquire held that lock until the
worktree existed and its lock was taken); otherwise the worktree's own lock does,
since the acquire or release working on it holds that lock throughout. A record whose
worktree lock is held, or in which a git that a killed acquire started still runs, is
in progress and left alone (kept; ``gitxact worktree list`` shows its phase). An
abandoned one is finished or undone (:mod:`gitxact.worktrees.sweep`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import LockTimeoutError
from gitxact.leases import records as leases
from gitxact.locking.locks import worktree_key
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.worktrees import registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def worktree_id(repo: Repo, lease: Lease) -> str | None:
    """The id of *lease*'s worktree: recorded once the lease is active; before that (an
    acquire still checking out, or killed), read from the folder's ``.git`` file, if it
    names an admin folder of this repository."""
    if lease.worktree_id is not None:
        return lease.worktree_id
    admin = registration.admin_dir_of(Path(lease.path))
    if admin is None or os.path.realpath(admin.parent) != os.path.realpath(repo.layout.common_dir / "worktrees"):
        return None
    return admin.name


def in_progress(repo: Repo, lease: Lease) -> str | None:
    """Why an unfinished record (``provisioning``, ``releasing``, ``removing``) is still being
    worked on, or ``None`` when whoever wrote it is gone.

    The acquire or release working on a worktree holds its lock throughout; a worktree
    whose lock is free has nobody working on it, unless a git that a killed acquire
    started (its checkout) still runs there. A record with no worktree yet belongs to an
    acquire that held the repository lock, which the caller now holds (a dry run may
    catch a live acquire there: it only reports).
    """
    wid = worktree_id(repo, lease)
    if wid is None:
        return None
    admin = registration.admin_dir_of(Path(lease.path))
    if admin is not None and registration.half_made(admin):
        return None  # git never finished adding it: no lock was taken, no checkout began
    key = worktree_key(wid)
    try:
        with repo.locks.hold(key, EXCLUSIVE, 0):
            # Free now: read the record again, under that lock. The one the caller read may
            # be from before the acquire or release finished and let the lock go.
            now = leases.current(repo, lease)
    except LockTimeoutError:
        holders = [p.describe() for p in repo.locks.parties(key) if p.holding]
        who = "; ".join(holders) if holders else "another process"
        return f"its {'acquire' if lease.phase == 'provisioning' else 'release'} is running ({who})"
    if now is None or now.phase != lease.phase:
        return f"it changed meanwhile (now {now.phase if now else 'ended'})"
    if lease.phase == "provisioning" and admin is not None:
        busy = registration.git_at_work(repo, Path(lease.path), admin)
        if busy is not None:
            return f"a git its acquire started still works there ({busy})"
    return None
