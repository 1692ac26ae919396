"""What gitxact may delete: only what it created, whatever its state files say.

A lease record is gitxact's own file, but a forged or stale record with a valid
checksum can name anything: a person's worktree, ``main``, a folder outside the
repository. So every deletion is checked against facts on disk that only gitxact
writes, not against the record alone:

* a **worktree** is ours when its real path is under the worktree root and its admin
  folder (``<common>/worktrees/<id>``) carries our mark: the ``gitxact-lease`` file
  written right after ``git worktree add`` (holding the lease's token hash), or, for a
  worktree whose mark was never written (a kill in between, a lease from before marks),
  git's lock reason ``gitxact lease <agent> ...`` that ``worktree add --lock`` wrote;
* a **folder** is ours when it is under the worktree root (acquire claims folders only
  there) and empty;
* a **branch** is ours to delete when it is under ``gitxact.branchPrefix``; the callers
  then also require that no worktree has it checked out and that it is integrated,
  as git confirms it (:func:`gitxact.worktrees.branches.delete_if_integrated`).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.leases import reader as lease_reader
from gitxact.util.files import FILE_MODE
from gitxact.worktrees import paths, registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease

MARK = lease_reader.MARK


def under_root(repo: Repo, path: str | Path) -> bool:
    """Whether *path* (by real path) lies strictly inside gitxact's worktree root."""
    root = os.path.realpath(paths.worktree_root(repo))
    return os.path.realpath(path).startswith(root + os.sep)


def mark(path: Path, token_hash: str) -> None:
    """Write our mark into the admin folder of the worktree just added at *path*."""
    admin = registration.admin_dir_of(path)
    if admin is None:
        return
    fd = os.open(admin / MARK, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token_hash + "\n")


def _read(path: Path) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    return ""


def _marked(admin: Path, lease: Lease) -> bool:
    if lease.token_hash and _read(admin / MARK).strip() == lease.token_hash:
        return True
    return _read(admin / "locked").startswith(f"{registration.LOCK_REASON_PREFIX}{lease.agent} (")


def owns_worktree(repo: Repo, lease: Lease) -> bool:
    """Whether the worktree at *lease*'s path is one gitxact made for this lease."""
    path = Path(lease.path)
    if not under_root(repo, path):
        return False
    admin = registration.admin_dir_of(path)
    if admin is None:
        return False
    common = os.path.realpath(repo.layout.common_dir / "worktrees")
    if os.path.dirname(os.path.realpath(admin)) != common:
        return False  # a .git file pointing elsewhere: not a worktree of this repository
    return _marked(admin, lease)


def owns_branch(repo: Repo, branch: str) -> bool:
    """Only branches under ``gitxact.branchPrefix`` are gitxact's to delete."""
    prefix = repo.settings.branch_prefix
    return bool(prefix) and branch.startswith(prefix) and len(branch) > len(prefix)


def why_not_ours(repo: Repo, lease: Lease) -> str | None:
    """Why *lease*'s record cannot be gitxact's (``None`` when it can): checked before anything acts on it.

    A record whose folder is not (or no longer) a worktree passes: there is nothing of
    anyone's to remove but an empty folder under the root, or git's record of it.
    """
    if not under_root(repo, lease.path):
        return f"its path {lease.path} is outside gitxact's worktree root"
    if registration.admin_dir_of(Path(lease.path)) is not None and not owns_worktree(repo, lease):
        return f"the worktree at {lease.path} does not carry gitxact's mark for this lease"
    return None
