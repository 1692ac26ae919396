"""``worktree list``: every lease with what a person needs to judge it.

Read-only: no lock is taken (state files are replaced atomically, git queries run
with ``GIT_OPTIONAL_LOCKS=0``), so listing never waits on, or disturbs, a busy agent.
Never shows a token or its hash.

Its cost is flat in the number of leases but for one thing: one ``git worktree list``,
one read of the records, each owner's liveness read once (agents often share an
owner), and ahead/behind for all leases in three git calls
(:mod:`gitxact.worktrees.divergence`). Whether a worktree holds uncommitted work can
only be told by a ``git status`` in it: one process per lease, run side by side a few at a
time, and so asked for (*dirty*): the CLI's tables leave it to ``--dirty`` (see
:func:`gitxact.cli.context.dirty_option` for why no decision depends on it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError
from gitxact.leases import records as leases
from gitxact.worktrees import divergence
from gitxact.worktrees.lease_info import LeaseInfo, LeaseListDoc, OwnerDoc
from gitxact.worktrees.paths import real_paths, registrations_by_real_path

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.git import run as git
    from gitxact.leases.records import Lease

#: ``git status`` runs at once at most (each is a process; more only crowd the CPUs).
STATUS_AT_ONCE = 4


class _Owners:
    """Each owner's liveness, read once however many leases it holds."""

    def __init__(self) -> None:
        self._alive: dict[tuple[int, str, int | None], bool | None] = {}

    def alive(self, lease: Lease) -> bool | None:
        """True: provably alive; False: provably dead; None: cannot be told from here."""
        key = (lease.owner_pid, lease.owner_host, lease.owner_start)
        if key not in self._alive:
            self._alive[key] = lease.owner_state()
        return self._alive[key]

    def doc(self, lease: Lease) -> OwnerDoc:
        return OwnerDoc(pid=lease.owner_pid, host=lease.owner_host, alive=self.alive(lease))


def owner_doc(lease: Lease) -> OwnerDoc:
    return _Owners().doc(lease)


def collect(repo: Repo, *, details: bool = True, dirty: bool | None = None, sizes: bool = False) -> LeaseListDoc:
    """Every lease; *details* adds ahead/behind and, unless *dirty* is False, dirty/clean.
    Each lease's size on disk is the one recorded (at acquire); *sizes* walks each active
    worktree now and records that (:mod:`gitxact.worktrees.disk`: the one walk per folder).

    (What each would conflict with is :func:`gitxact.land.foresight.annotate`'s to add.)
    """
    now = time.time()
    records = leases.load(repo)
    if not records:
        return LeaseListDoc()
    if sizes:
        from gitxact.worktrees import disk

        for agent, fresh in disk.remeasure(repo, list(records.values())).items():
            records[agent] = records[agent].model_copy(update=fresh)
        now = time.time()
    entries = registrations_by_real_path(repo)
    owners = _Owners()
    infos: list[LeaseInfo] = []
    whole: list[tuple[Lease, LeaseInfo]] = []
    agents = sorted(records)
    reals = real_paths([records[agent].path for agent in agents])
    for agent, where in zip(agents, reals, strict=True):
        lease = records[agent]
        entry = entries.get(where)
        info = _info(lease, entry, owners, now)
        if not info.folder_missing and entry is not None:
            whole.append((lease, info))
        infos.append(info)
    if details and whole:
        _add_divergence(repo, whole)
        if dirty is not False:
            _add_dirty(whole)
    return LeaseListDoc(leases=infos)


def _info(lease: Lease, entry: git.WorktreeEntry | None, owners: _Owners, now: float) -> LeaseInfo:
    """One lease as ``worktree list`` shows it (*entry*: git's registration of its worktree)."""
    missing = not os.path.isdir(lease.path)
    alive = owners.alive(lease)
    expired = lease.expired(now)
    live = leases.counts_as_live(alive, expired=expired)  # reap's rule, owner read once
    return LeaseInfo(
        agent=lease.agent,
        path=lease.path,
        branch=lease.branch,
        base=lease.base,
        phase=lease.phase,
        worktree_id=lease.worktree_id,
        owner=owners.doc(lease),
        created=round(lease.created, 3),
        age=round(max(0.0, now - lease.created), 3),
        heartbeat=round(lease.heartbeat, 3),
        heartbeat_age=round(max(0.0, now - lease.heartbeat), 3),
        ttl=lease.ttl,
        expired=expired,
        live=live,
        folder_missing=missing,
        registered=entry is not None,
        locked=entry is not None and entry.locked is not None,
        warning=stale_warning(lease, now) if live and expired and alive else None,
        ports=list(lease.ports),
        sparse=list(lease.sparse),
        disk_bytes=lease.disk_bytes,
        disk_age=None if lease.disk_measured is None else round(max(0.0, now - lease.disk_measured), 3),
    )


def stale_warning(lease: Lease, now: float) -> str:
    """A live owner past its TTL: kept (its process runs), but it has stopped renewing."""
    return (
        f"no heartbeat for {now - lease.heartbeat:.0f}s (ttl {lease.ttl:g}s); kept: its owner pid "
        f"{lease.owner_pid} is alive (`gitxact worktree renew {lease.agent}` clears this)"
    )


def _add_divergence(repo: Repo, whole: list[tuple[Lease, LeaseInfo]]) -> None:
    pairs = [divergence.Pair(lease.base, lease.base_commit, lease.branch) for lease, _ in whole]
    try:
        counts = divergence.ahead_behind(repo.layout.common_dir, pairs)
    except GitError:
        return  # left unknown ("?"), as for a base that no longer names a commit
    for pair, (_, info) in zip(pairs, whole, strict=True):
        if pair in counts:
            info.ahead, info.behind = counts[pair]


def _add_dirty(whole: list[tuple[Lease, LeaseInfo]]) -> None:
    # Imported here: a listing without dirty/clean (the CLI's tables) needs neither.
    from concurrent.futures import ThreadPoolExecutor

    from gitxact.git import snapshots

    def changed(lease: Lease) -> bool | None:
        if lease.phase != "active":
            return None  # being checked out or emptied: its files say nothing yet
        try:
            return snapshots.has_changes(Path(lease.path))
        except GitError:
            return None

    if len(whole) == 1:
        whole[0][1].dirty = changed(whole[0][0])
        return
    with ThreadPoolExecutor(max_workers=min(STATUS_AT_ONCE, len(whole))) as pool:
        for (_, info), verdict in zip(whole, pool.map(changed, [lease for lease, _ in whole]), strict=True):
            info.dirty = verdict
