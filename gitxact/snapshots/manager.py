"""``Snapshots``: the library's handle on kept work (``ws.snapshots``), what the CLI calls.

Each method is one of the modules beside it; this class only binds them to a
``Repo`` and accepts durations the way people write them (``"7d"``) or as seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.snapshots import catalog, detail, expiry, restore, usage
from gitxact.snapshots.results import SnapshotListDoc
from gitxact.util.durations import parse_duration
from gitxact.util.names import validate_agent

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.snapshots.results import DropDoc, RestoreDoc, SnapshotShowDoc
    from gitxact.snapshots.usage import SnapshotUsage


def seconds(value: float | str | None, what: str = "--older-than") -> float | None:
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    return parse_duration(value, what)


class Snapshots:
    """Kept uncommitted work: list, show, restore into a worktree, drop, expire."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def list(self, *, agent: str | None = None, older_than: float | str | None = None) -> SnapshotListDoc:
        """Oldest first; each says why it must stay (``protected``), if it must."""
        chosen = catalog.select(
            catalog.read_all(self.repo),
            agent=validate_agent(agent) if agent is not None else None,
            older_than=seconds(older_than),
        )
        return SnapshotListDoc(snapshots=chosen, count=len(chosen))

    def show(self, name: str) -> SnapshotShowDoc:
        return detail.show(self.repo, name)

    def restore(
        self, name: str, *, into: str | Path | None = None, force: bool = False, with_commits: bool | None = None
    ) -> RestoreDoc:
        """*with_commits*: the commits under the snapshot that HEAD lacks are refused
        (``None``, exit 3, named), brought first (``True``) or left out and named (``False``)."""
        return restore.restore(self.repo, name, into=into, force=force, with_commits=with_commits)

    def drop(
        self,
        *names: str,
        agent: str | None = None,
        older_than: float | str | None = None,
        everything: bool = False,
        dry_run: bool = False,
    ) -> DropDoc:
        return expiry.drop(
            self.repo,
            names,
            agent=validate_agent(agent) if agent is not None else None,
            older_than=seconds(older_than),
            everything=everything,
            dry_run=dry_run,
        )

    def expire(self, *, dry_run: bool = False) -> DropDoc:
        """Apply ``gitxact.snapshotExpiry`` (nothing when it is not set)."""
        return expiry.expire(self.repo, dry_run=dry_run)

    def usage(self) -> SnapshotUsage:
        return usage.usage(self.repo)
