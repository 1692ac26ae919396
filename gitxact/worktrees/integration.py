"""Whether a branch is integrated: the one rule release, acquire, ``prune-branches`` and ``list --branches`` share.

A branch is integrated when deleting it (or starting it again) loses no work. Four
rules, asked in this order, the cheap ones first; the first that matches is the answer
(and ``worktree list --branches`` shows it):

``merged``
    every commit on it is on another branch too: its tip is on another local branch
    (``git for-each-ref --contains``), or on one of the targets.
``landed``
    gitxact's queue landed it (:mod:`gitxact.worktrees.landed`): its tip is the tip
    that landed, or under it; the landed commits are still on the target; each one
    has its original's author, date and message (what ``git rebase`` keeps); every
    commit of the branch not on the target is one of them, or its patch is upstream.
    One commit added after the landing makes it unmerged again.
``patches upstream``
    every commit's patch is on the target (``git cherry``: patch-ids, so a branch
    rebased or cherry-picked elsewhere counts); a branch holding a merge commit never
    matches here (a merge's own resolution has no patch to compare).
``squash-merged``
    merging the branch into the target changes nothing: ``git merge-tree --write-tree``
    gives the target's own tree (a squash merge, a rebase on a forge).

A target is a branch or commit the caller names: the lease's base (release, acquire),
the main worktree's branch (the kept branches), and a landed branch's target. Read-only:
nothing here changes a ref; only ``merge-tree`` writes (unreachable) tree objects.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gitxact.git import refs
from gitxact.git import run as git

if TYPE_CHECKING:
    from pathlib import Path

    from gitxact.core.repo import Repo
    from gitxact.worktrees.landed import LandedBranch

MERGED = "merged"
LANDED = "landed"
PATCHES_UPSTREAM = "patches upstream"
SQUASH_MERGED = "squash-merged"
RULES = (MERGED, LANDED, PATCHES_UPSTREAM, SQUASH_MERGED)
#: Why a branch no rule matched is kept (release, ``prune-branches``).
NOT_INTEGRATED = "not integrated: some of its work is on no other branch, nor upstream"
#: An object id as git prints it (SHA-1 or SHA-256).
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Verdict:
    """*rule* is the rule that matched (``None``: not integrated), *into* what it matched against."""

    tip: str
    rule: str | None = None
    into: str | None = None

    @property
    def integrated(self) -> bool:
        return self.rule is not None

    def describe(self) -> str:
        """``landed on main``, ``patches upstream in main``: for a human line."""
        if self.rule is None:
            return "not integrated"
        where = {MERGED: "into", LANDED: "on", PATCHES_UPSTREAM: "in", SQUASH_MERGED: "into"}[self.rule]
        return f"{self.rule} {where} {self.into}" if self.into else self.rule


def judge(
    repo: Repo,
    branch: str,
    tip: str,
    targets: Sequence[str],
    *,
    merged_into: str | bool | None = None,
    records: dict[str, LandedBranch] | None = None,
) -> Verdict:
    """Which rule (see the module) says *branch*, at *tip*, is integrated, if any.

    *targets*: branch names or commits to compare with (names that name nothing are
    skipped, and so is the branch itself). *merged_into*: the ``merged`` question when
    the caller already asked git (a branch name: yes, into it; ``False``: no); ``None``
    asks it here. *records*: :func:`gitxact.worktrees.landed.load`'s answer, when the
    caller judges many branches.
    """
    cwd = repo.layout.common_dir
    if merged_into is None:
        merged_into = _containing_branch(cwd, branch, tip) or False
    if merged_into:
        return Verdict(tip, MERGED, str(merged_into))
    if records is None:
        from gitxact.worktrees import landed

        records = landed.load(repo)
    record = records.get(branch)
    if record is not None and not _plausible(record, branch):
        record = None
    itself = {branch, f"refs/heads/{branch}"}
    named = list(dict.fromkeys(t for t in targets if t and t not in itself))
    if record is not None:
        shown = record.target if record.ref == f"refs/heads/{record.target}" else record.ref.removeprefix("refs/")
        if record.ref not in named and shown not in named:
            named.append(record.ref)
    resolved = _resolve(cwd, named)
    for name, commit in resolved:
        if _is_ancestor(cwd, tip, commit):
            return Verdict(tip, MERGED, _shown(name))
    if record is not None and _landed(cwd, tip, record):
        return Verdict(tip, LANDED, record.target)
    for name, commit in resolved:
        if _patches_upstream(cwd, commit, tip):
            return Verdict(tip, PATCHES_UPSTREAM, _shown(name))
    for name, commit in resolved:
        if _merges_to_nothing(cwd, commit, tip):
            return Verdict(tip, SQUASH_MERGED, _shown(name))
    return Verdict(tip)


# -- the rules ---------------------------------------------------------------------------------


def _containing_branch(cwd: Path, branch: str, tip: str) -> str | None:
    """Another local branch whose history holds *tip*, if any."""
    result = git.run(
        ["for-each-ref", f"--contains={tip}", "--format=%(refname)", "refs/heads/"], cwd, check=False, read_only=True
    )
    others = [ref.removeprefix("refs/heads/") for ref in result.lines() if ref != f"refs/heads/{branch}"]
    return others[0] if others else None


def _plausible(record: LandedBranch, branch: str) -> bool:
    """A record whose ref is its target's (local, or a remote's tracking ref), never the
    branch itself: a forged record naming the branch as its own target would otherwise
    "confirm" anything, and deleting the branch would delete the only ref holding it."""
    ids = [record.tip, record.landed_tip, *(c for pair in record.commits for c in (pair.original, pair.landed))]
    if not all(_OID.fullmatch(oid) for oid in ids):
        return False  # never an option look-alike or a revision expression on git's command line
    if record.branch != branch or branch in (record.target, record.ref.removeprefix("refs/heads/")):
        return False
    if record.ref == f"refs/heads/{record.target}":
        return True
    remote, _, target = record.ref.removeprefix("refs/remotes/").partition("/")
    return record.ref.startswith("refs/remotes/") and bool(remote) and target == record.target


def landed_already(repo: Repo, branch: str, tip: str) -> int:
    """How many of *branch*'s commits not on its landed target git confirms the queue landed
    (0 without a record): said when a branch with work added after its landing is refused."""
    from gitxact.worktrees import landed

    record = landed.load(repo).get(branch)
    if record is None or not _plausible(record, branch):
        return 0
    found = _unconfirmed(repo.layout.common_dir, tip, record)
    return 0 if found is None else found[0] - len(found[1])


def _landed(cwd: Path, tip: str, record: LandedBranch) -> bool:
    """The record's claim, as far as git confirms it (see the module's ``landed``)."""
    if not _is_ancestor(cwd, tip, record.tip):
        return False  # a commit added after the landing: that one did not land
    found = _unconfirmed(cwd, tip, record)
    return found is not None and not found[1]


def _unconfirmed(cwd: Path, tip: str, record: LandedBranch) -> tuple[int, set[str]] | None:
    """How many commits of *tip* are not on the record's target, and which of them git does
    not confirm landed; ``None`` when the record cannot be checked at all."""
    target = refs.read(cwd, record.ref)
    if target is None or not _is_ancestor(cwd, record.landed_tip, target):
        return None
    walk = git.run(["rev-list", "--parents", f"{target}..{tip}", "--"], cwd, check=False, read_only=True)
    if not walk.ok:
        return None
    rows = [line.split() for line in walk.lines()]
    if any(len(row) > 2 for row in rows):
        return None  # a merge's own resolution is in no landed commit: the tree rule judges it
    needed = [row[0] for row in rows]
    if not needed:
        return 0, set()  # everything on it is on the target (reached when the target is a remote's ref)
    landed_as = {c.original: c.landed for c in record.commits}
    pairs = [(commit, landed_as[commit]) for commit in needed if commit in landed_as]
    confirmed: set[str] = set()
    if pairs:
        off_target = git.run(
            ["rev-list", *(new for _, new in pairs), "--not", target, "--"], cwd, check=False, read_only=True
        )
        faces = commit_faces(cwd, [c for pair in pairs for c in pair])
        if not off_target.ok or faces is None:
            return None
        gone = set(off_target.lines())  # landed commits not on the target any more (reset, rewritten)
        # A commit git did not describe is not one it confirms.
        confirmed = {old for old, new in pairs if new not in gone and old in faces and faces[old] == faces.get(new)}
    unconfirmed = set(needed) - confirmed
    if unconfirmed - set(landed_as):
        # git's rebase drops a commit whose patch is already upstream: it has no landed copy.
        unconfirmed -= _upstream_patches(cwd, target, tip) - set(landed_as)
    return len(needed), unconfirmed


def _patches_upstream(cwd: Path, target: str, tip: str) -> bool:
    walk = git.run(["rev-list", "--merges", "-n", "1", f"{target}..{tip}", "--"], cwd, check=False, read_only=True)
    if not walk.ok or walk.lines():
        return False
    cherry = git.run(["cherry", target, tip], cwd, check=False, read_only=True)
    lines = cherry.lines()
    return cherry.ok and bool(lines) and all(line.startswith("- ") for line in lines)


def _upstream_patches(cwd: Path, target: str, tip: str) -> set[str]:
    """The commits of *tip* not on *target* whose patch is on *target* (``git cherry``'s ``-``)."""
    cherry = git.run(["cherry", target, tip], cwd, check=False, read_only=True)
    return {line[2:].strip() for line in cherry.lines() if line.startswith("- ")} if cherry.ok else set()


def _merges_to_nothing(cwd: Path, target: str, tip: str) -> bool:
    """``git merge-tree --write-tree`` (git >= 2.38): a clean merge whose tree is the target's."""
    merged = git.run(["merge-tree", "--write-tree", "--no-messages", target, tip], cwd, check=False)
    if merged.returncode != 0 or not merged.lines():
        return False  # 1: conflicts; anything else: unrelated histories, an old git
    return merged.lines()[0] == git.rev_parse(cwd, f"{target}^{{tree}}")


# -- git -----------------------------------------------------------------------------------------


def _resolve(cwd: Path, names: list[str]) -> list[tuple[str, str]]:
    """``(name, commit)`` of each name that names a commit (one process for all)."""
    from gitxact.worktrees.divergence import resolve

    found = resolve(cwd, names)
    return [(name, found[name]) for name in names if name in found]


def _shown(name: str) -> str:
    return name.removeprefix("refs/heads/").removeprefix("refs/")


def _is_ancestor(cwd: Path, old: str, new: str) -> bool:
    return old == new or git.run(["merge-base", "--is-ancestor", old, new], cwd, check=False, read_only=True).ok


def commit_faces(cwd: Path, commits: list[str]) -> dict[str, str] | None:
    """Each commit's author, author date and message: what ``git rebase`` and ``cherry-pick``
    carry over unchanged (the committer and the tree change)."""
    if not commits:
        return {}
    result = git.run(
        ["log", "--no-walk=unsorted", "-z", "--format=%H%x00%an <%ae> %ad%x00%B", "--date=raw", *commits, "--"],
        cwd,
        check=False,
        read_only=True,
    )
    if not result.ok:
        return None
    fields = result.stdout.split("\0")
    faces: dict[str, str] = {}
    for at in range(0, len(fields) - 2, 3):
        faces[fields[at].strip()] = fields[at + 1] + "\0" + fields[at + 2]
    return faces


def match_rewritten(cwd: Path, originals: list[str], rewritten: list[str]) -> list[tuple[str, str]]:
    """``(original, rewritten)`` pairs: each rewritten commit matched, in order, to the first
    unmatched original with its face (:func:`commit_faces`). Originals a rebase dropped
    (their patch already upstream) and rewritten commits with no original have no pair."""
    faces = commit_faces(cwd, [*originals, *rewritten]) or {}
    waiting: dict[str, list[str]] = {}
    for commit in originals:
        waiting.setdefault(faces.get(commit, ""), []).append(commit)
    pairs: list[tuple[str, str]] = []
    for commit in rewritten:
        face = faces.get(commit)
        if face is not None and waiting.get(face):
            pairs.append((waiting[face].pop(0), commit))
    return pairs
