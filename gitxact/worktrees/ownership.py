"""What gitxact may delete: only what it created, whatever its state files say.

A lease record is gitxact's own file, but a forged or stale record with a valid
checksum can name anything: a person's worktree, ``main``, a folder outside the
repository. So every deletion is checked against facts on disk that only gitxact
writes, not against the record alone:

* a **worktree** is ours when its real path is under the worktree root and its admin
  folder (``<common>/worktrees/<id>``) carries our mark: the ``gitxact-lease`` file
  written right after ``git worktree add`` (holding the lease's token hash), with git's
  lock reason, where there is one, naming the lease's agent (a forged record can copy a
  token hash, not the agent the worktree was locked for), or, for an
  acquire killed before it wrote the mark (a ``provisioning`` record, or a registration
  no record holds), git's lock reason ``gitxact lease <agent> ...`` that ``worktree add
  --lock`` wrote. The lock reason names only the agent, which anyone who can read the
  admin folder knows: a record of any later phase that only it vouches for could be
  forged by any member of a shared repository's group, so it is no evidence there. The
  evidence must be a regular file owned by the user who made the worktree (the owner of
  its folder) or by root: one a group member wrote into a group-writable admin folder is
  not;
* a **folder** is ours when it is under the worktree root (acquire claims folders only
  there) and empty;
* a **branch** is ours to delete when it is under ``gitxact.branchPrefix``; the callers
  then also require that no worktree has it checked out and that it is integrated,
  as git confirms it (:func:`gitxact.worktrees.branches.delete_if_integrated`).

Who may change a lease (release, renew it) is told by its token: :func:`lease_of`.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import OperationFailedError, RefusedError
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.util.files import FILE_MODE
from gitxact.worktrees import paths, registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def under_root(repo: Repo, path: str | Path) -> bool:
    """Whether *path* (by real path) lies strictly inside gitxact's worktree root."""
    root = os.path.realpath(paths.worktree_root(repo))
    return os.path.realpath(path).startswith(root + os.sep)


def mark(path: Path, token_hash: str) -> None:
    """Write our mark into the admin folder of the worktree just added at *path*."""
    admin = registration.admin_dir_of(path)
    if admin is None:
        return
    fd = os.open(
        admin / lease_reader.MARK, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE
    )
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token_hash + "\n")


def _read(path: Path) -> str:
    with contextlib.suppress(OSError, UnicodeDecodeError):
        return path.read_text(encoding="utf-8")
    return ""


def _trusted(evidence: Path, maker: int) -> bool:
    """Whether *evidence* is a regular file of the worktree's maker (uid *maker*) or root."""
    try:
        info = os.lstat(evidence)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid in (maker, 0)


def _marked(admin: Path, lease: Lease, *, orphan: bool) -> bool:
    try:
        maker = os.lstat(lease.path).st_uid  # who made the worktree's folder (acquire did)
    except OSError:
        return False
    mark = admin / lease_reader.MARK
    if lease.token_hash and _trusted(mark, maker) and _read(mark).strip() == lease.token_hash:
        # The mark holds a token hash, which the record can copy: git's lock names the agent
        # the worktree was made for, and a record under another name is not this lease (a
        # person's own lock, or none, names no agent: the mark decides; reap locks it again).
        return not lease_reader.lock_names_another(os.fspath(admin), lease.agent)
    if lease.phase != "provisioning" and not orphan:
        # An acquire that finished wrote the mark: git's lock reason proves nothing more. (An
        # orphan's stand-in is made from that registration, no record, and ends work saved.)
        return False
    locked = admin / "locked"
    return _trusted(locked, maker) and _read(locked).startswith(f"{lease_reader.LOCK_REASON_PREFIX}{lease.agent} (")


def owns_worktree(repo: Repo, lease: Lease, *, orphan: bool = False) -> bool:
    """Whether the worktree at *lease*'s path is one gitxact made for this lease (*orphan*: a
    stand-in for a registration of gitxact's that no record holds)."""
    path = Path(lease.path)
    if not under_root(repo, path):
        return False
    admin = registration.admin_dir_of(path)
    if admin is None:
        return False
    common = os.path.realpath(repo.layout.common_dir / "worktrees")
    if os.path.dirname(os.path.realpath(admin)) != common:
        return False  # a .git file pointing elsewhere: not a worktree of this repository
    return _marked(admin, lease, orphan=orphan)


def owns_branch(repo: Repo, branch: str) -> bool:
    """Only branches under ``gitxact.branchPrefix`` are gitxact's to delete."""
    prefix = repo.settings.branch_prefix
    return bool(prefix) and branch.startswith(prefix) and len(branch) > len(prefix)


def why_not_ours(repo: Repo, lease: Lease, *, orphan: bool = False) -> str | None:
    """Why *lease*'s record cannot be gitxact's (``None`` when it can): checked before anything acts on it.

    A record whose folder is not (or no longer) a worktree passes: there is nothing of
    anyone's to remove but an empty folder under the root, or git's record of it.
    """
    if not orphan and not lease.token_hash:
        return "it has no token hash (every lease record has one)"
    if not under_root(repo, lease.path):
        return f"its path {lease.path} is outside gitxact's worktree root"
    if registration.admin_dir_of(Path(lease.path)) is not None and not owns_worktree(repo, lease, orphan=orphan):
        return f"the worktree at {lease.path} does not carry gitxact's mark for this lease"
    return None


def lease_of(repo: Repo, agent: str, token: str | None, *, force: bool, verb: str) -> Lease:
    """*agent*'s lease record, for a caller that shows its token (or *force*): who may
    *verb* (release, renew) a lease. Refused (exit 3) without the right token."""
    lease = leases.load_records(repo).get(agent)
    if lease is None:
        raise OperationFailedError(f"agent {agent!r} holds no lease", hint="`gitxact worktree list` shows leases")
    if not force:
        if not token:
            raise RefusedError(
                f"to {verb} the lease of {agent!r} its token is needed; nothing was changed",
                hint="pass --token (or GITXACT_LEASE_TOKEN) as returned by acquire, or --force",
            )
        if not lease.token_matches(token):
            raise RefusedError(f"wrong token for the lease of {agent!r}; nothing was changed")
    return lease
