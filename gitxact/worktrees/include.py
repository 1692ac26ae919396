"""``.worktreeinclude``: the git-ignored files a fresh worktree needs (``.env``, local config).

A new worktree is a checkout: only committed files. Claude Code's own worktree
creation copies the files a ``.worktreeinclude`` file names (gitignore syntax) from
the project into the new worktree, but only those git ignores, so nothing tracked is
ever shadowed by a copy. gitxact's ``WorktreeCreate`` hook replaces that creation, so
it keeps the promise: same file, same rule.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from gitxact.git import run as git
from gitxact.util import console
from gitxact.util.beneath import ThroughSymlinkError, copy_beneath

if TYPE_CHECKING:
    from collections.abc import Sequence

INCLUDE_FILE = ".worktreeinclude"


def included_files(source: Path, patterns: Sequence[str] = ()) -> list[str]:
    """Paths under *source* that ``.worktreeinclude`` (or one of *patterns*, in its syntax:
    ``.gitxact.toml``'s ``lease.include``) names and git ignores (untracked)."""
    include = source / INCLUDE_FILE
    excludes = [f"--exclude-from={include}"] if include.is_file() else []
    excludes += [f"--exclude={pattern}" for pattern in patterns]
    if not excludes:
        return []
    named = _ignored(source, *excludes)
    if not named:
        return []
    ignored = set(_ignored(source, "--exclude-standard"))
    return sorted(path for path in named if path in ignored)


class Included(NamedTuple):
    """What :func:`copy_included` did: the paths copied, and those skipped because the
    destination, or a folder on its way, is a symbolic link in the new worktree."""

    copied: list[str]
    skipped: list[str]


def copy_included(source: Path, target: Path, patterns: Sequence[str] = ()) -> Included:
    """Copy :func:`included_files` from worktree *source* into worktree *target*.

    A file already in *target* is left alone (it came with the checkout or was made
    there); symbolic links are copied as links; modes are kept. Nothing is written
    through a link the checkout brought (``--base`` may be any commit, and its ``conf``
    a link to a folder outside the repository): such a path is skipped and returned.
    """
    copied: list[str] = []
    skipped: list[str] = []
    for rel in included_files(source, patterns):
        origin = source / rel
        try:
            kind = os.lstat(origin).st_mode
        except FileNotFoundError:
            continue
        if not (stat.S_ISREG(kind) or stat.S_ISLNK(kind)):  # a nested repository ("dir/"), a FIFO
            continue
        try:
            copy_beneath(origin, target, rel)
        except FileExistsError:
            continue
        except ThroughSymlinkError:
            skipped.append(rel)
            continue
        copied.append(rel)
    return Included(copied, skipped)


def warn_skipped(skipped: list[str], target: Path) -> None:
    for rel in skipped:
        console.warn(f"not copied into {target}: {rel} goes through a symbolic link (or a file) there")


def _ignored(source: Path, *excludes: str) -> list[str]:
    result = git.run(["ls-files", "-z", "--others", "--ignored", *excludes], source, read_only=True)
    return result.zfields()
