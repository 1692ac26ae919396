"""What a tdd step commits: exactly the PATHs given, as they are on disk, on top of HEAD.

Like ``git commit --only PATH...``: the commit's tree is HEAD's tree with those paths
taken from the worktree (new, changed and deleted files alike), built in a private
index so the user's index is not touched unless the commit happens. Other staged
changes stay staged and out of the commit. Paths are literal (``:(literal)``), never
globs: the shell has already expanded what the user meant.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError, OperationFailedError, UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.core.repo import Repo


def resolve_paths(repo: Repo, paths: Sequence[str]) -> list[str]:
    """PATHs (relative to where the command was started) as paths relative to the worktree.

    Refused with exit 2: empty, a NUL, anything that resolves outside the worktree
    (``..`` escapes, absolute paths elsewhere, a symlinked folder pointing out) and
    anything inside ``.git``.
    """
    if not paths:
        raise UsageError("no PATH given", hint="name the files to commit, e.g. tests/test_parser.py")
    worktree = repo.layout.require_worktree()
    real_worktree = Path(os.path.realpath(worktree))
    resolved: list[str] = []
    for raw in paths:
        if not raw or "\0" in raw or "\n" in raw:
            raise UsageError(f"invalid path {raw!r}")
        candidate = Path(os.path.normpath(repo.layout.start / raw))
        try:
            rel = candidate.relative_to(worktree)
        except ValueError:
            raise UsageError(f"{raw!r} is outside the worktree {worktree}") from None
        real_parent = Path(os.path.realpath(candidate.parent))
        if real_parent != real_worktree and real_worktree not in real_parent.parents:
            raise UsageError(f"{raw!r} leads outside the worktree {worktree} (through a symbolic link)")
        if rel.parts and rel.parts[0] == ".git":
            raise UsageError(f"{raw!r} is inside .git")
        resolved.append(rel.as_posix() if rel.parts else ".")
    return sorted(set(resolved))


def pathspecs(paths: Sequence[str]) -> list[str]:
    return [f":(literal){path}" for path in paths]


def index_tree(repo: Repo) -> str:
    """The user's index as a tree (to notice if it changes while a check runs)."""
    try:
        return repo.git(["write-tree"]).stdout.strip()
    except GitError as exc:
        raise OperationFailedError(
            "the index has unresolved merge conflicts (or is locked)", hint="resolve them first, then retry"
        ) from exc


def tree_with_paths(repo: Repo, head: str | None, paths: Sequence[str]) -> str:
    """HEAD's tree with *paths* as they are on disk, built in a private index."""
    git_dir = repo.layout.git_dir
    scratch = git_dir / f"gitxact-index-{secrets.token_hex(6)}"
    env = {"GIT_INDEX_FILE": str(scratch)}
    try:
        if head is not None:
            repo.git(["read-tree", head], env=env)
        added = repo.git(["add", "-A", "--", *pathspecs(paths)], env=env, check=False)
        if not added.ok:
            detail = added.stderr.strip()
            if "did not match" in detail:
                raise UsageError(f"PATH matches no file: {detail.splitlines()[-1]}")
            if "ignored" in detail:
                raise UsageError(
                    "a PATH is ignored by .gitignore: " + " ".join(detail.splitlines()[1:2]),
                    hint="name files git tracks or may track",
                )
            raise GitError(["add", "-A", "--", *paths], added.returncode, added.stderr)
        return repo.git(["write-tree"], env=env).stdout.strip()
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def head_tree(repo: Repo, head: str | None) -> str | None:
    if head is None:
        return None
    return repo.git(["rev-parse", f"{head}^{{tree}}"], read_only=True).stdout.strip()


def commit_tree(repo: Repo, tree: str, parent: str | None, message: str) -> str:
    """The commit object (not yet on any branch): the user's identity, config and signing apply."""
    parents = ["-p", parent] if parent else []
    return repo.git(["commit-tree", tree, *parents, "-F", "-"], input=message).stdout.strip()


def reset_paths(repo: Repo, paths: Sequence[str]) -> None:
    """Index entries of *paths* from the new HEAD (what ``commit --only`` leaves staged)."""
    repo.git(["reset", "-q", "--", *pathspecs(paths)])
