"""Picking up where an agent's last lease left off: its newest lease-end snapshot, restored.

Meant for ``worktree acquire --resume``: a new lease of an agent whose previous lease
ended with uncommitted work gets that work back in its fresh worktree, exactly when
the kept branch is checked out as it was, merged when the branch or base moved on.
``--fresh`` is simply not calling this. The snapshot stays, so a resume can be retried
or undone; ``snapshots drop`` removes it when it is no longer wanted.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.snapshots import catalog
from gitxact.snapshots.restore import restore
from gitxact.util.names import validate_agent

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.snapshots.results import RestoreDoc, SnapshotInfo


def latest_left_by(repo: Repo, agent: str) -> SnapshotInfo | None:
    """The newest snapshot an ended lease of *agent* left (``released``), if any."""
    validate_agent(agent)
    found = [info for info in catalog.read_all(repo) if info.agent == agent and info.kind == "released"]
    return found[-1] if found else None


def resume(repo: Repo, agent: str, worktree: Path | str, *, with_commits: bool | None = None) -> RestoreDoc | None:
    """Restore *agent*'s newest lease-end snapshot into *worktree* (its new, clean lease).

    ``None`` when there is nothing to resume. A conflict with the new HEAD raises
    :class:`~gitxact.errors.OperationFailedError` (exit 1) and changes nothing; the
    lease itself stays, as acquired. Commits under the snapshot that the worktree
    lacks are refused, brought or left out as *with_commits* says (``restore``'s rule).
    """
    info = latest_left_by(repo, agent)
    if info is None:
        return None
    return restore(repo, info.name, into=worktree, with_commits=with_commits)
