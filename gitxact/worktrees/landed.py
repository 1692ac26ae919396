"""What the landing queue landed, per branch: ``state/landed.json``, changed under resource lock ``landed``.

``gitxact land`` rebases a branch onto its target, so the branch's own commits are on no
other branch afterwards: by git's ancestry alone the branch looks unmerged, and release,
acquire and ``prune-branches`` would keep it forever. The lander therefore writes here,
for each branch it landed, the tip that landed, the target's tip after it, and which
commit landed as which. :mod:`gitxact.worktrees.integration` reads it back, and believes
it only as far as git confirms it (the landed commits still on the target, each one the
original's author, date and message), so a stale or forged record deletes nothing.

The record outlives the landing queue's history (``landing.json`` keeps its last 50
requests): a branch released weeks after it landed is still known. An entry goes when
its branch is deleted; a branch landed again adds the new landing's commits to it.

Here, below :mod:`gitxact.land`, because the worktree rules read it and imports point
down; the lander writes it through :func:`remember`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from gitxact.state.record import NUMBER, STRING, Record, dict_of, field, list_of

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

FILE_NAME = "landed.json"
#: Resource lock of the file; sorts before the queue's ``landing`` and after its ``land.*``
#: (the lander holds its queue when it writes here), keeping the resource order.
LOCK = "landed"
#: Entries kept at most (oldest landings dropped first); a dropped one only costs the
#: exact rule, the patch and tree rules still judge the branch.
LIMIT = 500


class LandedCommit(Record):
    original: str = field(STRING)  # the branch's commit
    landed: str = field(STRING)  # the commit it became on the target (the same id when it was not rewritten)


class LandedBranch(Record):
    branch: str = field(STRING)
    tip: str = field(STRING)  # the branch tip that landed (the request's)
    target: str = field(STRING)  # the branch landed onto
    #: The ref that must still contain :attr:`landed_tip`: ``refs/heads/<target>``, or the
    #: remote-tracking ref of a remote target.
    ref: str = field(STRING)
    landed_tip: str = field(STRING)  # the target's tip right after the landing
    commits: list[LandedCommit] = field(list_of(LandedCommit), default=[])
    request: str = field(STRING, default="")  # the landing request's id
    at: float = field(NUMBER, default=0.0)


class LandedState(Record):
    KIND: ClassVar[str] = "landed"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    branches: dict[str, LandedBranch] = field(dict_of(LandedBranch), default={})


def load(repo: Repo) -> dict[str, LandedBranch]:
    """Every branch's record (read without the lock: the atomic rename shows a whole generation).

    An unreadable file reads as empty: the exact rule then simply does not apply, and a
    branch is judged by git alone, never deleted on a record nobody can read.
    """
    from gitxact.errors import GitxactError

    if not repo.state_path(FILE_NAME).exists() and not repo.state_path(FILE_NAME + ".bak").exists():
        return {}
    try:
        return dict(repo.state_file(FILE_NAME, LandedState).load().branches)
    except GitxactError:
        return {}


def remember(repo: Repo, entries: list[LandedBranch]) -> None:
    """Record *entries* (idempotent: recovery may record a landing its lander already did).

    A branch landed before keeps its earlier commits when its earlier tip is under the
    new one (the second landing rebased only the newer commits: git's rebase drops the
    ones already upstream); else the new landing replaces the record.
    """
    if not entries:
        return
    file = repo.state_file(FILE_NAME, LandedState)
    with repo.locks.resource(LOCK):
        state = file.load(repair=True)
        for entry in entries:
            commits = entry.commits
            old = state.branches.get(entry.branch)
            if old is not None and old.ref == entry.ref and _is_ancestor(repo, old.tip, entry.tip):
                seen = {c.original for c in commits}
                commits = [c for c in old.commits if c.original not in seen] + commits
            state.branches[entry.branch] = entry.model_copy(update={"commits": commits, "at": entry.at or time.time()})
        for name in sorted(state.branches, key=lambda n: state.branches[n].at)[: max(0, len(state.branches) - LIMIT)]:
            del state.branches[name]
        file.save(state)


def _is_ancestor(repo: Repo, old: str, new: str) -> bool:
    if old == new:
        return True
    result = repo.git(
        ["merge-base", "--is-ancestor", old, new], cwd=repo.layout.common_dir, check=False, read_only=True
    )
    return result.ok


def forget(repo: Repo, branch: str) -> None:
    """Drop *branch*'s record (its branch was deleted); nothing to do when there is none."""
    if branch not in load(repo):
        return
    file = repo.state_file(FILE_NAME, LandedState)
    with repo.locks.resource(LOCK):
        state = file.load(repair=True)
        if state.branches.pop(branch, None) is not None:
            file.save(state)
