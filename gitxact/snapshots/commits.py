"""The commits a snapshot stands on, and bringing them into the worktree it is restored into.

A snapshot is uncommitted work on top of its HEAD (its *base*). Restored into a worktree
whose history lacks that base, the work alone would arrive without the commits it was
made on: after a crash, ``recover`` rolls an open TDD sequence back, so the red commit
(the test file) is held only by the snapshot ref that saved the worktree first, and a
new lease starts from ``main`` without it. So restore never applies the work alone in
silence: it refuses and names those commits and the refs that keep them, unless asked
to bring them (``--with-commits``) or to leave them out (``--without-commits``).

Which commits are missing is git's own rule for a rebase: those of the base's history
that are not in HEAD and whose change is not in HEAD as another commit either
(``rev-list --right-only --cherry-pick HEAD...BASE``), so work already landed under
other ids (a rebase onto the target) is not asked for again. Bringing them is what a
careful git user would do by hand:

* HEAD is in the base's history (a fresh lease, or one with no commits of its own):
  ``git merge --ff-only BASE``, the branch moves to the base and the restore is exact;
* HEAD has commits of its own: the missing commits are cherry-picked onto it (the
  target's commits are never dropped), like ``git rebase`` computed as objects first.
  A conflict, or a merge commit among them (a pick would flatten it), changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from gitxact.errors import OperationFailedError, RefusedError
from gitxact.git import merges, refs
from gitxact.git import run as git
from gitxact.git.refs import MUST_NOT_EXIST, RefUpdate

#: How many commits, refs or paths a message names before it says "and N more".
_SHOWN = 5


def missing(worktree: Path, head: str | None, base: str | None) -> list[str]:
    """The commits of *base*'s history whose change *head* lacks, oldest first."""
    if base is None or (head is not None and merges.is_ancestor(worktree, base, head)):
        return []
    spec = [base] if head is None else ["--right-only", "--cherry-pick", f"{head}...{base}"]
    return git.run(["rev-list", "--reverse", "--topo-order", *spec, "--"], worktree, read_only=True).lines()


def subjects(worktree: Path, commits: list[str]) -> dict[str, str]:
    if not commits:
        return {}
    # On stdin: a new lease's whole history can be under a snapshot, too long for argv.
    out = git.run(
        ["log", "--no-walk=unsorted", "--stdin", "--format=%H %s"],
        worktree,
        read_only=True,
        input="\n".join(commits) + "\n",
    ).lines()
    return dict(line.partition(" ")[::2] for line in out)


def kept_in(worktree: Path, base: str) -> list[str]:
    """Every ref that holds *base* (and so its history): branches first, then gitxact's refs."""
    names = git.run(["for-each-ref", "--contains", base, "--format=%(refname)"], worktree, read_only=True).lines()
    return sorted(names, key=lambda name: (not name.startswith("refs/heads/"), name))


def _listed(items: list[str]) -> str:
    extra = len(items) - _SHOWN
    return ", ".join(items[:_SHOWN]) + (f" and {extra} more" if extra > 0 else "")


def refusal(
    name: str, worktree: Path, head: str | None, base: str, commits: list[str], *, command: str
) -> RefusedError:
    """Exit 3: restoring the work alone would leave *commits* out; nothing was changed."""
    titles = subjects(worktree, commits[: _SHOWN + 1])
    named = _listed([f"{c[:12]} ({titles.get(c, '')})" for c in commits])
    where = _listed(kept_in(worktree, base))
    return RefusedError(
        f"snapshot {name} was taken on {base[:12]}, and {len(commits)} commit(s) under it are not in "
        f"HEAD {(head or 'unborn')[:12]} of {worktree}: {named}; restoring the uncommitted work alone "
        f"would leave them out, so nothing was changed (they are kept in {where})",
        hint=f"`{command} --with-commits` brings them first (fast-forward, or cherry-picked onto HEAD), "
        "then the work; `--without-commits` restores the work alone",
    )


@dataclass(frozen=True)
class Brought:
    """The missing commits as they will be on the target (commit objects; no ref moved yet)."""

    how: Literal["fast-forward", "cherry-pick"]
    head: str
    #: Each missing commit and what it became (itself, its pick, or ``None``: already there).
    became: dict[str, str | None] = field(default_factory=dict)


def bring(worktree: Path, head: str | None, base: str, commits: list[str], env: dict[str, str]) -> Brought:
    """Compute HEAD with *commits* in it; raises (changing nothing) when they cannot be brought."""
    if head is None or merges.is_ancestor(worktree, head, base):
        return Brought(how="fast-forward", head=base, became={c: c for c in commits})
    flattened = [c for c in commits if merges.is_merge(worktree, c)]
    if flattened:
        raise OperationFailedError(
            f"cannot bring the snapshot's commits onto {worktree}: {_listed([c[:12] for c in flattened])} "
            "is a merge, which a cherry-pick would flatten; nothing was changed",
            hint=f"merge them yourself (`git merge {base[:12]}` there), then restore again",
        )
    picked = merges.pick_onto(worktree, commits, head, env)
    if picked.conflict is not None:
        commit, paths = picked.conflict
        raise OperationFailedError(
            f"cannot bring the snapshot's commits onto {worktree}: {commit[:12]} conflicts with HEAD in "
            f"{_listed(paths)}; nothing was changed",
            hint=f"bring them yourself (`git cherry-pick {commit[:12]}` there, resolving), then restore again; "
            f"or restore where it was taken (`git worktree add --detach DIR {base[:12]}`)",
        )
    return Brought(how="cherry-pick", head=picked.tip or head, became=picked.became)


def move_head(worktree: Path, head: str | None, new: str, env: dict[str, str], message: str) -> None:
    """HEAD's branch (or a detached HEAD) from *head* to *new*, compare-and-swap.

    The worktree lock is held, so only a raw git in this worktree could move it
    meanwhile; then the update fails (:class:`~gitxact.git.refs.RefConflictError`)
    before any file was touched.
    """
    symbolic = git.run(["symbolic-ref", "-q", "HEAD"], worktree, check=False, read_only=True)
    branch = symbolic.stdout.strip() if symbolic.ok else ""
    old = head or MUST_NOT_EXIST
    update = RefUpdate(branch, new, old) if branch else RefUpdate("HEAD", new, old, no_deref=True)
    refs.apply(worktree, [update], message=message, env=env)
