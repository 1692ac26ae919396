"""Sparse leases: only some folders of the repository checked out (git's cone mode).

A lease of a 100,000-file monorepo for an agent that works in ``services/api`` needs
``services/api`` (and the files at the top: cone mode always has them), not the rest.
The worktree is registered with ``--no-checkout`` (:func:`gitxact.worktrees.registration.add_worktree`),
then ``git sparse-checkout set --cone`` writes its patterns and its ``config.worktree``
(no file, no index yet: a worktree with nothing checked out has nothing to update), and
the checkout outside the repository lock (``reset --hard``) writes only those folders.

This runs under the repository lock: the first ``sparse-checkout set`` of a clone turns
on ``extensions.worktreeConfig`` in the shared config, and two at once would race on
``config.lock`` (one failing). Everything after is git's own behaviour in a sparse
worktree: the paths outside the cone are in the index with the skip-worktree bit, so
``status`` does not see them as deleted, commits keep them, and snapshots record them
(:func:`gitxact.git.snapshots.worktree_tree`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.project.config import sparse_path

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from gitxact.core.repo import Repo


def checked(folders: Iterable[str]) -> tuple[str, ...]:
    """*folders* as given to ``--sparse``, each checked as ``.gitxact.toml``'s ``lease.sparse``."""
    return tuple(sparse_path(folder, "--sparse") for folder in folders)


def set_cone(repo: Repo, path: Path, folders: Iterable[str]) -> None:
    """Make the (not yet checked out) worktree at *path* sparse on *folders*; none: leave it whole."""
    wanted = [folder.strip("/") for folder in folders]
    if wanted:
        # --stdin: a folder named "-x" is a folder, not an option.
        repo.git(["sparse-checkout", "set", "--cone", "--stdin"], cwd=path, input="\n".join(wanted) + "\n")
