"""``.worktreeinclude``: the git-ignored files a fresh worktree needs (``.env``, local config).

A new worktree is a checkout: only committed files. Claude Code's own worktree
creation copies the files a ``.worktreeinclude`` file names (gitignore syntax) from
the project into the new worktree, but only those git ignores, so nothing tracked is
ever shadowed by a copy. gitxact's ``WorktreeCreate`` hook replaces that creation, so
it keeps the promise: same file, same rule.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.git import run as git

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


def copy_included(source: Path, target: Path, patterns: Sequence[str] = ()) -> list[str]:
    """Copy :func:`included_files` from worktree *source* into worktree *target*.

    A file already in *target* is left alone (it came with the checkout or was made
    there); symbolic links are copied as links; modes are kept.
    """
    copied: list[str] = []
    for rel in included_files(source, patterns):
        origin, dest = source / rel, target / rel
        if os.path.lexists(dest) or not os.path.lexists(origin):
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_symlink():
            os.symlink(os.readlink(origin), dest)
        else:
            shutil.copy2(origin, dest, follow_symlinks=False)
        copied.append(rel)
    return copied


def _ignored(source: Path, *excludes: str) -> list[str]:
    result = git.run(["ls-files", "-z", "--others", "--ignored", *excludes], source, read_only=True)
    return result.zfields()
