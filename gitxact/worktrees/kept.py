"""Branches that leases left behind: what is kept, whether it is merged, and pruning the merged.

A release keeps an agent's branch whose commits are on no other branch (so no work is
lost), and ``--keep-branch`` keeps any. Over weeks they pile up; a reused agent name
then meets its old branch (see ``acquire --resume/--fresh``). Here they are listed with
their state, and the merged ones deleted: each by compare-and-swap, under the
repository lock (which leasing takes too, so no acquire picks one up meanwhile), never
one a lease uses or a worktree has checked out, never one with a commit found on no
other branch. There is no mode that deletes unmerged work.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.leases import records as leases
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.worktrees import branches

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class KeptBranch(BaseModel):
    branch: str
    tip: str
    #: True when every commit on it is on another branch too (pruning deletes it).
    merged: bool
    #: Where it is checked out, if anywhere (then it is never pruned).
    checked_out: str | None = None


class KeptBranchesDoc(Document):
    branches: list[KeptBranch] = Field(default_factory=list)


class PruneBranchesDoc(Document):
    dry_run: bool
    deleted: list[str] = Field(default_factory=list)
    #: Branch -> why it was kept.
    kept: dict[str, str] = Field(default_factory=dict)


def kept_branches(repo: Repo) -> KeptBranchesDoc:
    """Branches under ``gitxact.branchPrefix`` that no lease uses, merged or not.

    Two git calls whatever the number of branches: every branch tip, then ``merge-base
    --independent`` over them; a tip outside that set (an ancestor of another branch's),
    or one another branch shares, has every commit on another branch too.
    """
    cwd = repo.layout.common_dir
    leased = {lease.branch for lease in leases.load_records(repo).values()}
    prefix = f"refs/heads/{repo.settings.branch_prefix}"
    listed = repo.git(
        ["for-each-ref", "--format=%(objectname) %(refname) %(worktreepath)", "refs/heads/"], cwd=cwd, read_only=True
    ).lines()
    heads = [line.split(" ", 2) for line in listed]
    branches_at = Counter(tip for tip, _, _ in heads)
    tips = sorted(branches_at)
    independent = set(repo.git(["merge-base", "--independent", *tips], cwd=cwd, read_only=True).lines() if tips else [])
    found: list[KeptBranch] = []
    for tip, ref, where in heads:
        name = ref.removeprefix("refs/heads/")
        if not ref.startswith(prefix) or name in leased:
            continue
        merged = tip not in independent or branches_at[tip] > 1
        found.append(KeptBranch(branch=name, tip=tip, merged=merged, checked_out=where or None))
    return KeptBranchesDoc(branches=found)


def prune_merged(repo: Repo, *, dry_run: bool = False) -> PruneBranchesDoc:
    """Delete the kept branches whose commits are all on another branch (see the module)."""
    doc = PruneBranchesDoc(dry_run=dry_run)
    with repo.locks.repository(EXCLUSIVE):
        for kept in kept_branches(repo).branches:
            if kept.checked_out:
                doc.kept[kept.branch] = f"checked out at {kept.checked_out}"
            elif not kept.merged:
                doc.kept[kept.branch] = "its commits are on no other branch"
            elif dry_run:
                doc.deleted.append(kept.branch)
            else:
                deleted, why = branches.delete_branch_if_merged(repo, kept.branch)
                if deleted:
                    doc.deleted.append(kept.branch)
                else:
                    doc.kept[kept.branch] = why or "kept"
    return doc
