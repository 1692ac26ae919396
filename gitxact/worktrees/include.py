"""``.worktreeinclude``: the git-ignored files a fresh worktree needs (``.env``, local config).

A new worktree is a checkout: only committed files. Claude Code's own worktree
creation copies the files a ``.worktreeinclude`` file names (gitignore syntax) from
the project into the new worktree, but only those git ignores, so nothing tracked is
ever shadowed by a copy. gitxact's ``WorktreeCreate`` hook replaces that creation, so
it keeps the promise: same file, same rule.

An entry may name a folder (``node_modules/``, ``.venv/``, ``target/``): git lists its
files one by one and each is copied through :mod:`gitxact.util.beneath`, reflinked where
the filesystem shares extents (XFS, btrfs), so a cache in eight leases costs inodes, not
eight copies of its bytes. A line ``link FOLDER/`` (in ``.worktreeinclude`` or
``lease.include``) makes a symbolic link to the main worktree's folder instead, for caches
that tolerate being shared; other tools reading ``.worktreeinclude`` see a pattern that
matches nothing. A link is kept only where git ignores the link itself (a ``.gitignore``
line ``node_modules/`` matches folders only, so a link there would be untracked work that
every ``status`` and release trips on): else it is removed and reported skipped.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from gitxact.git import run as git
from gitxact.util import console
from gitxact.util.beneath import Copied, Copier, ThroughSymlinkError, link_beneath, real_folder_beneath

if TYPE_CHECKING:
    from collections.abc import Sequence

INCLUDE_FILE = ".worktreeinclude"
#: A line ``link FOLDER/``: link the folder instead of copying its files.
LINK_PREFIX = "link "


def link_patterns(source: Path, patterns: Sequence[str] = ()) -> list[str]:
    """The ``link`` lines of ``.worktreeinclude`` and *patterns*, each as its pattern."""
    include = source / INCLUDE_FILE
    lines: list[str] = []
    with contextlib.suppress(OSError, UnicodeDecodeError):
        lines = include.read_text(encoding="utf-8").splitlines() if include.is_file() else []
    return [line[len(LINK_PREFIX) :].strip() for line in [*lines, *patterns] if line.startswith(LINK_PREFIX)]


def included_files(source: Path, patterns: Sequence[str] = ()) -> list[str]:
    """Paths under *source* that ``.worktreeinclude`` (or one of *patterns*, in its syntax:
    ``.gitxact.toml``'s ``lease.include``) names and git ignores (untracked); a folder's
    files one by one. ``link`` lines are not among them (:func:`linked_folders`)."""
    include = source / INCLUDE_FILE
    excludes = [f"--exclude-from={include}"] if include.is_file() else []
    excludes += [f"--exclude={pattern}" for pattern in patterns if not pattern.startswith(LINK_PREFIX)]
    if not excludes:
        return []
    named = _ignored(source, *excludes)
    if not named:
        return []
    ignored = set(_ignored(source, "--exclude-standard"))
    return sorted(path for path in named if path in ignored)


def linked_folders(source: Path, patterns: Sequence[str] = ()) -> list[str]:
    """The folders (``name/``) under *source* a ``link`` line names that git ignores whole
    (no tracked file inside: git lists such a folder as one entry), or lies in one."""
    links = link_patterns(source, patterns)
    if not links:
        return []
    named = _ignored(source, "--directory", *(f"--exclude={pattern}" for pattern in links))
    ignored = set(_ignored(source, "--directory", "--exclude-standard"))
    return sorted(
        path
        for path in named
        if path.endswith("/") and any(path[: i + 1] in ignored for i, c in enumerate(path) if c == "/")
    )


class Included(NamedTuple):
    """What :func:`copy_included` did: the paths copied, and those skipped because the
    destination, or a folder on its way, is a symbolic link in the new worktree (or, for a
    ``link`` folder, because git would not ignore the link); the folders linked; how many
    of the copies share their bytes with the original (reflinks)."""

    copied: list[str]
    skipped: list[str]
    linked: list[str] = []  # noqa: RUF012 - a NamedTuple default, never mutated
    reflinked: int = 0


def copy_included(source: Path, target: Path, patterns: Sequence[str] = ()) -> Included:
    """Copy :func:`included_files` from worktree *source* into worktree *target*, and link
    :func:`linked_folders`.

    A file already in *target* is left alone (it came with the checkout or was made
    there); symbolic links are copied as links; modes are kept. Nothing is written
    through a link the checkout brought (``--base`` may be any commit, and its ``conf``
    a link to a folder outside the repository): such a path is skipped and returned.
    Nothing is read through a link in *source* either: git never lists a path below one,
    and each file is opened beneath *source* with no link followed on the way.
    """
    copied: list[str] = []
    skipped: list[str] = []
    reflinked = 0
    linked = _link_folders(source, target, linked_folders(source, patterns), skipped)
    wanted = [rel for rel in included_files(source, patterns) if not rel.startswith(tuple(linked))]
    through: list[str] = []
    with Copier(source, target) as copier:
        for rel, how in copier.copy_many(wanted):  # the link already brings what is under *linked*
            if isinstance(how, ThroughSymlinkError):
                through.append(rel)
            elif isinstance(how, Copied):
                reflinked += how.how == "reflink"
                copied.append(rel)
            # else: there already; gone or changed meanwhile; a nested repository ("dir/"), a FIFO
    skipped.extend(sorted(through))
    return Included(sorted(copied), skipped, linked, reflinked)


def _link_folders(source: Path, target: Path, folders: list[str], skipped: list[str]) -> list[str]:
    """Link each of *folders* in *target* to the same folder of *source*; those git would
    not ignore as a link, or that are not real folders of *source*, go to *skipped*."""
    linked: list[str] = []
    top = os.path.realpath(source)
    for folder in folders:
        rel = folder.rstrip("/")
        if not real_folder_beneath(source, rel):  # reached through a link: never point out of the repository
            skipped.append(folder)
            continue
        try:
            link_beneath(os.path.join(top, rel), target, rel)
        except FileExistsError:
            continue
        except ThroughSymlinkError:
            skipped.append(folder)
            continue
        if not git.run(["check-ignore", "-q", "--", rel], target, read_only=True, check=False).ok:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target / rel)  # the link just made (its folders were opened no-follow)
            skipped.append(folder)
            continue
        linked.append(folder)
    return linked


def warn_skipped(skipped: list[str], target: Path) -> None:
    for rel in skipped:
        if rel.endswith("/"):
            console.warn(
                f"not linked into {target}: {rel} is not a folder of the main worktree, or git would not "
                f"ignore a link there (a .gitignore line {rel} matches folders only: add /{rel.rstrip('/')})"
            )
        else:
            console.warn(f"not copied into {target}: {rel} goes through a symbolic link (or a file) there")


def _ignored(source: Path, *excludes: str) -> list[str]:
    result = git.run(["ls-files", "-z", "--others", "--ignored", *excludes], source, read_only=True)
    return result.zfields()
