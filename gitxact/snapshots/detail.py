"""What one snapshot holds: its files as ``git status`` showed them, and what it costs on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.git import merges, snapshots
from gitxact.git import run as git
from gitxact.snapshots import catalog
from gitxact.snapshots.results import FileChange, SnapshotShowDoc

if TYPE_CHECKING:
    from pathlib import Path

    from gitxact.core.repo import Repo
    from gitxact.snapshots.results import SnapshotInfo


def show(repo: Repo, name: str) -> SnapshotShowDoc:
    info = catalog.find(repo, name)
    cwd = catalog.cwd(repo)
    snap = snapshots.from_commit(cwd, info.commit)
    return SnapshotShowDoc(
        snapshot=info,
        index_commit=snap.index_commit,
        files=changes(cwd, snap),
        size=size(cwd, info),
    )


def changes(cwd: Path, snap: snapshots.Snapshot) -> list[FileChange]:
    """Every path the snapshot changed, with ``git status --porcelain``'s two columns.

    The index column compares I with HEAD, the worktree column W with I; a path in W
    that is neither in I nor in HEAD was untracked (``??``), because W holds the
    untracked files in the same tree as the tracked ones.
    """
    head = snap.head or merges.empty_tree(cwd)
    staged = _name_status(cwd, head, snap.index_commit)
    unstaged = _name_status(cwd, snap.index_commit, snap.commit)
    found: list[FileChange] = []
    for path in sorted(set(staged) | set(unstaged)):
        index, worktree = staged.get(path, " "), unstaged.get(path, " ")
        if index == " " and worktree == "A":
            index, worktree = "?", "?"
        found.append(FileChange(path=path, index=index, worktree=worktree))
    return found


def size(cwd: Path, info: SnapshotInfo) -> int:
    """Bytes on disk of the objects the snapshot adds to the commit it was taken on."""
    args = ["rev-list", "--objects", "--disk-usage", info.commit]
    if info.head:
        args += ["--not", info.head]
    return int(git.run(args, cwd, read_only=True).stdout.strip() or 0)


def _name_status(cwd: Path, old: str, new: str) -> dict[str, str]:
    result = git.run(["diff-tree", "-r", "-z", "--no-renames", "--name-status", old, new], cwd, read_only=True)
    fields = result.zfields()
    return {fields[i + 1]: fields[i][:1] for i in range(0, len(fields) - 1, 2)}
