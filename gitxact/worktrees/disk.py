"""How much disk a lease's worktree takes, measured once and recorded, never on every listing.

Issue 27: a few dozen worktrees reach hundreds of GB, and nobody sees it coming. Walking a
100,000-file checkout costs a stat per file, too much for each ``worktree list`` or
``status``; so the walk runs when the lease is made (after its checkout, included files and
setup) and again only when asked (``--sizes``), and the figure is kept in the lease record
with the time it was taken, shown with its age.

The figure is what ``du -s`` says: allocated blocks (``st_blocks``), each hard-linked file
once, symbolic links never followed (a ``link``-mode cache counts as a link, not its target).
A reflinked copy counts in full: the filesystem does not say which extents are shared.
"""

from __future__ import annotations

import os
import stat
import time
from typing import TYPE_CHECKING

from gitxact.leases import records as leases

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease

#: POSIX's unit of ``st_blocks`` (whatever the filesystem's block size).
_BLOCK = 512


def measure(path: str) -> int | None:
    """Bytes on disk under *path* (its own folder included), or ``None`` if it cannot be read."""
    try:
        top = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(top.st_mode):
        return None
    total = top.st_blocks * _BLOCK
    seen: set[tuple[int, int]] = set()
    folders = [path]
    while folders:
        try:
            with os.scandir(folders.pop()) as listing:
                for entry in listing:
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # gone meanwhile (an agent's build at work)
                    if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                        key = (info.st_dev, info.st_ino)
                        if key in seen:
                            continue
                        seen.add(key)
                    total += info.st_blocks * _BLOCK
                    if stat.S_ISDIR(info.st_mode):
                        folders.append(entry.path)
        except OSError:
            continue  # a folder that cannot be read (or went away) counts as what was seen
    return total


def measured(path: str) -> dict[str, int | None]:
    """The lease record's fields for *path*'s size now (:class:`~gitxact.leases.records.Lease`)."""
    return {"disk_bytes": measure(path), "disk_measured": int(time.time())}


def remeasure(repo: Repo, records: list[Lease]) -> dict[str, dict[str, int | None]]:
    """Walk each active lease of *records* now (``--sizes``) and record the figures.

    The walks take no lock (a listing never waits on a busy agent); the records are then
    updated under one hold of the ``leases`` lock, each only if it is still the same lease
    (same token hash), so a lease ended or made again meanwhile is never written back.
    Returns agent -> the fields measured.
    """
    found = {
        lease.agent: (lease.token_hash, measured(lease.path))
        for lease in records
        if lease.phase == "active" and os.path.isdir(lease.path)
    }
    if not found:
        return {}
    file = leases.leases_file(repo)
    with repo.locks.resource(leases.LEASES_LOCK):
        state = file.load(repair=True)
        changed = False
        for agent, (token_hash, sizes) in found.items():
            now = state.leases.get(agent)
            if now is not None and now.token_hash == token_hash:
                state.leases[agent] = now.model_copy(update=sizes)
                changed = True
        if changed:
            file.save(state)
    return {agent: sizes for agent, (_, sizes) in found.items()}
