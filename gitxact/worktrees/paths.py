"""Where leased worktrees go: the root folder, a free path per agent, claiming it atomically.

Nothing here takes a lock; the callers (acquire, reap) hold the repository lock.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.core import settings
from gitxact.errors import OperationFailedError, StateAccessError, UsageError
from gitxact.util import files
from gitxact.util.names import numbered
from gitxact.worktrees import registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.git import run as git


def worktree_root(repo: Repo, entries: dict[str, git.WorktreeEntry] | None = None) -> Path:
    """The folder gitxact hands worktrees out from (not created here).

    Beside the main worktree (the first entry git lists; the common dir of a bare
    repository), unless ``gitxact.worktreeRoot`` says otherwise.
    """
    if entries is not None:
        first = next(iter(entries.values()), None)
        main = first.path if first is not None and not first.bare else repo.layout.common_dir
    else:
        main = repo.layout.main_worktree or repo.layout.common_dir
    return settings.resolve_worktree_root(repo.settings, main)


def ensure_root(root: Path, git_dir: Path | None = None) -> None:
    """Create the root; refuse a symlink there (it could point the worktrees anywhere).

    A new root is shared as *git_dir* is (``core.sharedRepository``, :mod:`gitxact.util.files`),
    so every member of a shared repository's group can lease a worktree in it.
    """
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(root).st_mode):
            raise UsageError(
                f"worktree root {root} is a symbolic link; gitxact refuses to follow it",
                hint="point git config gitxact.worktreeRoot at a real folder",
            )
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(root)
            sharing = os.stat(git_dir).st_mode if git_dir is not None else 0
            if files.shared(sharing):  # set after the mkdir: the umask took the group bits
                files.set_mode_no_follow(root, files.dir_mode_under(sharing))
    except OSError as exc:
        raise OperationFailedError(f"cannot create worktree root {root}: {exc.strerror or exc}") from exc
    if not root.is_dir() or root.is_symlink():
        raise UsageError(f"worktree root {root} is not a folder", hint="fix git config gitxact.worktreeRoot")


def candidate_paths(root: Path, agent: str) -> Iterator[Path]:
    for name in numbered(agent):
        yield root / name


def free_path(root: Path, agent: str, taken: set[str]) -> Path:
    """The first candidate that does not exist and that neither git nor a lease knows of."""
    for path in candidate_paths(root, agent):
        if not os.path.lexists(path) and str(path) not in taken:
            return path
    raise OperationFailedError(f"no free worktree path for {agent!r} under {root}", hint="clean up the worktree root")


def claim(path: Path) -> bool:
    """Claim *path* atomically (``mkdir`` fails if anyone else made it first)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    except PermissionError as exc:  # a root made before the repository was shared, say
        raise StateAccessError.of(str(path), exc) from exc
    return True


def remove_empty_dir(path: Path) -> bool:
    """Remove a claimed folder git never filled; a non-empty one is left for a person."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def real(path: str | Path) -> str:
    return os.path.realpath(path)


def real_paths(given: list[str]) -> list[str]:
    """``os.path.realpath`` of each path, resolving each parent folder once: leases and
    worktrees share their root, so this costs one ``lstat`` per path, not one per part."""
    parents: dict[str, str] = {}
    found: list[str] = []
    for path in given:
        folder, name = os.path.split(os.path.abspath(path))
        if name in ("", ".", ".."):
            found.append(os.path.realpath(path))
            continue
        if folder not in parents:
            parents[folder] = os.path.realpath(folder)
        full = os.path.join(parents[folder], name)
        try:
            linked = stat.S_ISLNK(os.lstat(full).st_mode)
        except OSError:
            linked = False  # (realpath keeps a last part that does not exist as it is)
        found.append(os.path.realpath(full) if linked else full)
    return found


def registrations_by_real_path(repo: Repo) -> dict[str, git.WorktreeEntry]:
    """git's worktrees keyed by real path (leases record real paths too)."""
    found = registration.registrations(repo)
    return dict(zip(real_paths(list(found)), found.values(), strict=True))
