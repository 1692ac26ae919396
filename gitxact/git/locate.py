"""Finding the repository around a folder without running git, as git itself finds it.

``gx`` must know which worktree a command works in before it runs git (to take that
worktree's lock), and asking ``git rev-parse`` costs a git process on every call. So the
``.git`` folder or file is found walking up from where git will run, the way git's own
discovery does (``setup.c``): at each folder a ``.git`` folder or gitfile, else the folder
itself being a git directory; never across a ``GIT_CEILING_DIRECTORIES`` entry or a
filesystem boundary. Wherever the answer could differ from git's (``GIT_DIR`` and the
other locating variables, ``--git-dir``/``--work-tree``, a ``-c core.*``, a bare
repository, a git directory as the current folder, a ``.git`` that does not parse) this
returns ``None`` and the caller asks git: a wrong answer would be a lock in the wrong place.
Start-up (str paths, not pathlib): saves over 0.1 S on gx commit and gx status (docs/benchmark.md, "Start-up tricks").
"""

from __future__ import annotations

import os

from gitxact.git.lite import LOCATING_VARS
from gitxact.util.value import Value


class Found(Value):
    """A worktree found by the walk: its top folder, git dir, common dir and git's id for it."""

    __slots__ = ("common_dir", "git_dir", "worktree", "worktree_id")

    def __init__(self, *, worktree: str, git_dir: str, common_dir: str, worktree_id: str) -> None:
        self.worktree = worktree
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.worktree_id = worktree_id


def plain_options(locating: list[str]) -> bool:
    """Whether git's global options leave discovery to the walk: only ``-C`` and ``-c`` of keys
    that do not move the repository (``core.*``, ``include*`` and ``safe.*`` could)."""
    i = 0
    while i < len(locating):
        word = locating[i]
        if word == "-C":
            i += 2
            continue
        if word == "-c":
            key = locating[i + 1].split("=", 1)[0].lower()
            if key.startswith(("core.", "include", "safe.")):
                return False
            i += 2
            continue
        return False
    return True


def locate(start: str) -> Found | None:
    """The worktree around *start*, or ``None`` when only git can tell (see the module's doc)."""
    if any(name in os.environ for name in LOCATING_VARS):
        return None
    ceilings = _ceilings()
    try:
        folder = os.path.realpath(start)
        device = os.stat(folder).st_dev
    except OSError:
        return None
    while True:
        dotgit = os.path.join(folder, ".git")
        git_dir = _git_dir(dotgit)
        if git_dir is not None:
            return _found(folder, git_dir)
        if os.path.lexists(dotgit) or os.path.isfile(os.path.join(folder, "HEAD")):
            return None  # something git may or may not accept, or a git directory itself: git decides
        parent = os.path.dirname(folder)
        if parent == folder or parent in ceilings:
            return None  # git does not go up into a ceiling either
        try:
            if os.stat(parent).st_dev != device:
                return None
        except OSError:
            return None
        folder = parent


def _ceilings() -> set[str]:
    """``GIT_CEILING_DIRECTORIES`` as git reads it: absolute paths (relative ones ignored),
    resolved; git's test suite sets it for every test."""
    value = os.environ.get("GIT_CEILING_DIRECTORIES", "")
    return {os.path.realpath(entry) for entry in value.split(os.pathsep) if os.path.isabs(entry)}


def _git_dir(dotgit: str) -> str | None:
    if os.path.isdir(dotgit):
        return dotgit if os.path.isfile(os.path.join(dotgit, "HEAD")) else None
    try:
        with open(dotgit, encoding="utf-8") as handle:
            line = handle.readline(4096).rstrip("\n")
    except (OSError, UnicodeDecodeError):
        return None
    if not line.startswith("gitdir: "):
        return None
    target = os.path.join(os.path.dirname(dotgit), line[len("gitdir: ") :])
    return target if os.path.isfile(os.path.join(target, "HEAD")) else None


def _found(worktree: str, git_dir: str) -> Found | None:
    git_dir = os.path.realpath(git_dir)
    try:
        with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
            common = os.path.realpath(os.path.join(git_dir, handle.readline(4096).rstrip("\n")))
    except FileNotFoundError:
        return Found(worktree=worktree, git_dir=git_dir, common_dir=git_dir, worktree_id="main")
    except (OSError, UnicodeDecodeError):
        return None
    if os.path.dirname(git_dir) != os.path.join(common, "worktrees"):
        return None
    return Found(worktree=worktree, git_dir=git_dir, common_dir=common, worktree_id=os.path.basename(git_dir))
