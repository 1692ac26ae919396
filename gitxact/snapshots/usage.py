"""The snapshot line of ``gitxact status``: how many, what they keep on disk, the expiry."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gitxact.core.plain import PlainModel
from gitxact.git import run as git
from gitxact.git.snapshots import SNAPSHOT_PREFIX
from gitxact.snapshots import catalog
from gitxact.snapshots.setting import configured_expiry
from gitxact.util.durations import format_duration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class SnapshotUsage(PlainModel):
    """For ``gitxact status``: how many snapshots there are and what they keep on disk."""

    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("count", "size", "protected", "expiry")
    __slots__ = FIELDS

    def __init__(self, *, count: int, size: int, protected: int = 0, expiry: float | None = None) -> None:
        self.count = count
        #: Bytes on disk of objects only snapshots keep (not reachable from any branch, tag or remote).
        self.size = size
        self.protected = protected
        self.expiry = None if expiry is None else float(expiry)


def usage(repo: Repo) -> SnapshotUsage:
    """Count and size of every snapshot (two git calls; none of them takes a lock).

    The size is what dropping every snapshot would let ``gc`` free: the bytes on disk of
    the objects reachable from a snapshot but from no branch, tag or remote-tracking
    ref (``rev-list --disk-usage``), so work already committed elsewhere costs nothing.
    """
    items = catalog.read_all(repo)
    size = 0
    if items:
        result = git.run(
            [
                "rev-list",
                "--objects",
                "--disk-usage",
                f"--glob={SNAPSHOT_PREFIX.rstrip('/')}",
                "--not",
                "--branches",
                "--tags",
                "--remotes",
            ],
            catalog.cwd(repo),
            read_only=True,
        )
        size = int(result.stdout.strip() or 0)
    return SnapshotUsage(
        count=len(items),
        size=size,
        protected=sum(1 for info in items if info.protected),
        expiry=configured_expiry(repo),
    )


def describe(doc: SnapshotUsage) -> str:
    """``3 (1.2 MiB only they keep; 1 protected; expire after 7d)``: the human status line."""
    if not doc.count:
        return "none"
    parts = [f"{human_size(doc.size)} only they keep"]
    if doc.protected:
        parts.append(f"{doc.protected} protected")
    parts.append(f"expire after {format_duration(doc.expiry)}" if doc.expiry else "kept until dropped")
    return f"{doc.count} ({'; '.join(parts)})"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns
