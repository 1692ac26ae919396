"""Three-way merges as trees, and commits cherry-picked onto another tip, touching no file.

Both a snapshot applied onto a moved HEAD and a commit picked onto another branch are
the same operation: the change from a *base* commit to *theirs*, carried onto a tree.
``git merge-tree --write-tree`` computes it without a worktree, so a caller can know the
whole result (or every conflict) before it changes anything on disk. git 2.39 cannot
name the merge base (``--merge-base`` came in 2.40), so a throwaway commit with the
target tree and *base* as its parent makes *base* the merge base of the two sides.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gitxact.errors import GitError
from gitxact.git import run as git

#: gitxact's internal commits (snapshots, the throwaway merge sides) have a fixed
#: identity: they work when the user has no ``user.name`` configured and say where
#: they came from.
INTERNAL_IDENTITY = {
    "GIT_AUTHOR_NAME": "gitxact",
    "GIT_AUTHOR_EMAIL": "gitxact@localhost",
    "GIT_COMMITTER_NAME": "gitxact",
    "GIT_COMMITTER_EMAIL": "gitxact@localhost",
}


def empty_tree(worktree: Path) -> str:
    # Not the well-known SHA-1 constant: a SHA-256 repository has another one.
    return git.run(["hash-object", "-w", "-t", "tree", "--stdin"], worktree, input=b"").stdout.strip()


def three_way(
    worktree: Path, onto_tree: str, base: str | None, theirs: str, env: dict[str, str] | None = None
) -> tuple[str, list[str]]:
    """``theirs`` minus ``base``, applied to *onto_tree*: (the tree, the conflicting paths).

    *base* ``None`` (an unborn branch) merges from the empty tree. The tree is usable
    only when the list of conflicts is empty.
    """
    parents = ["-p", base] if base else []
    ids = {**(env or {}), **INTERNAL_IDENTITY}
    side = git.run(["commit-tree", onto_tree, *parents, "-m", "gitxact: merge base"], worktree, env=ids)
    args = ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z"]
    if base is None:
        args.append("--allow-unrelated-histories")
    result = git.run([*args, side.stdout.strip(), theirs], worktree, env=env, check=False)
    fields = result.zfields()
    if result.returncode not in (0, 1) or not fields:
        raise GitError(args, result.returncode, result.stderr)
    return fields[0], sorted({name for name in fields[1:] if name})


def tree_of(worktree: Path, commit: str | None) -> str:
    if commit is None:
        return empty_tree(worktree)
    return git.run(["rev-parse", f"{commit}^{{tree}}"], worktree, read_only=True).stdout.strip()


@dataclass(frozen=True)
class Picked:
    """Commits cherry-picked onto a tip, as new commit objects on no branch yet."""

    #: The last new commit (the tip itself when every pick was already there).
    tip: str | None
    #: Each picked commit and what it became; ``None``: its change was already there.
    became: dict[str, str | None] = field(default_factory=dict)
    #: The commit whose change conflicts, with the paths (nothing after it was picked).
    conflict: tuple[str, list[str]] | None = None


def pick_onto(worktree: Path, commits: list[str], tip: str | None, env: dict[str, str] | None = None) -> Picked:
    """``git cherry-pick commits...`` onto *tip*, computed as commit objects only.

    Like ``git rebase``: each commit keeps its author, date and message, gets the
    user's committer identity (and ``commit.gpgSign``, as ``commit-tree`` applies it),
    and a commit whose change is already in the tip is dropped, not made empty. Merge
    commits cannot be picked this way; the caller leaves them out or refuses.
    """
    became: dict[str, str | None] = {}
    current = tip
    for commit in commits:
        parents = git.run(["rev-list", "--parents", "-n", "1", commit], worktree, read_only=True).stdout.split()
        base = parents[1] if len(parents) > 1 else None
        tree, conflicts = three_way(worktree, tree_of(worktree, current), base, commit, env)
        if conflicts:
            return Picked(tip=current, became=became, conflict=(commit, conflicts))
        if current is not None and tree == tree_of(worktree, current):
            became[commit] = None
            continue
        current = _recommit(worktree, commit, tree, current, env)
        became[commit] = current
    return Picked(tip=current, became=became)


def _recommit(worktree: Path, original: str, tree: str, parent: str | None, env: dict[str, str] | None) -> str:
    fields = git.run(
        ["log", "-1", "--format=%an%x00%ae%x00%ad%x00%B", "--date=raw", original], worktree, read_only=True
    ).stdout
    name, email, date, message = fields.split("\0", 3)
    author = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date}
    parents = ["-p", parent] if parent else []
    return git.run(
        ["commit-tree", tree, *parents, "-F", "-"],
        worktree,
        env={**(env or {}), **author},
        input=message.rstrip("\n") + "\n",  # `--format` adds a line end to %B's own
    ).stdout.strip()


def is_ancestor(worktree: Path, ancestor: str, descendant: str) -> bool:
    """Is *ancestor* in *descendant*'s history (``git merge-base --is-ancestor``)?"""
    result = git.run(["merge-base", "--is-ancestor", ancestor, descendant], worktree, check=False, read_only=True)
    if result.returncode not in (0, 1):
        raise GitError(["merge-base", "--is-ancestor", ancestor, descendant], result.returncode, result.stderr)
    return result.ok


def is_merge(worktree: Path, commit: str) -> bool:
    return len(git.run(["rev-list", "--parents", "-n", "1", commit], worktree, read_only=True).stdout.split()) > 2
