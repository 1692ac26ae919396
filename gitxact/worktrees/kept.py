"""Branches that leases left behind: what is kept, whether it is integrated, and pruning those that are.

A release keeps an agent's branch that is not integrated (so no work is lost; the rule
is :mod:`gitxact.worktrees.integration`'s), and ``--keep-branch`` keeps any. Over weeks
they pile up; a reused agent name then meets its old branch (see ``acquire
--resume/--fresh``). Here they are listed with their state, and the integrated ones
deleted: each by compare-and-swap, under the repository lock (which leasing takes too,
so no acquire picks one up meanwhile), never one a lease uses or a worktree has checked
out, never one that is not integrated. There is no mode that deletes unmerged work.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.errors import UsageError
from gitxact.leases import records as leases
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.worktrees import branches, integration, landed, registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


class KeptBranch(BaseModel):
    branch: str
    tip: str
    #: True when it is integrated (pruning deletes it).
    merged: bool
    #: The integration rule that matched: ``merged``, ``landed``, ``patches upstream``,
    #: ``squash-merged`` (:mod:`gitxact.worktrees.integration`); ``None`` when unmerged.
    rule: str | None = None
    #: What it is integrated into (a branch).
    into: str | None = None
    #: Where it is checked out, if anywhere (then it is never pruned).
    checked_out: str | None = None


class KeptBranchesDoc(Document):
    branches: list[KeptBranch] = Field(default_factory=list)


class PruneBranchesDoc(Document):
    dry_run: bool
    deleted: list[str] = Field(default_factory=list)
    #: Deleted (or, with ``dry_run``, to delete) branch -> the integration rule that matched.
    integrated: dict[str, str] = Field(default_factory=dict)
    #: Branch -> why it was kept.
    kept: dict[str, str] = Field(default_factory=dict)


def kept_branches(repo: Repo) -> KeptBranchesDoc:
    """Branches under ``gitxact.branchPrefix`` that no lease uses, integrated or not.

    The ``merged`` rule in two git calls whatever the number of branches: every branch
    tip, then ``merge-base --independent`` over them; a tip outside that set (an ancestor
    of another branch's), or one another branch shares, has every commit on another
    branch too. Only the others are judged by the remaining rules, against the main
    worktree's branch (and a landed branch's target).
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
    target = default_target(repo)
    records = landed.load(repo)
    found: list[KeptBranch] = []
    for tip, ref, where in heads:
        name = ref.removeprefix("refs/heads/")
        if not ref.startswith(prefix) or name in leased:
            continue
        if tip not in independent or branches_at[tip] > 1:
            verdict = integration.Verdict(tip, integration.MERGED)
        else:
            verdict = integration.judge(repo, name, tip, [target] if target else [], merged_into=False, records=records)
        found.append(
            KeptBranch(
                branch=name,
                tip=tip,
                merged=verdict.integrated,
                rule=verdict.rule,
                into=verdict.into,
                checked_out=where or None,
            )
        )
    return KeptBranchesDoc(branches=found)


def default_target(repo: Repo) -> str | None:
    """What kept branches are compared with: the main worktree's branch (none when it is detached)."""
    try:
        label, commit = branches.resolve_base(repo, None, next(iter(registration.registrations(repo).values()), None))
    except UsageError:  # an unborn HEAD: nothing to compare with
        return None
    return label if label != commit else None


def prune_merged(repo: Repo, *, dry_run: bool = False) -> PruneBranchesDoc:
    """Delete the kept branches that are integrated (see the module), each judged again as it goes."""
    doc = PruneBranchesDoc(dry_run=dry_run)
    with repo.locks.repository(EXCLUSIVE):
        target = default_target(repo)
        for kept in kept_branches(repo).branches:
            if kept.checked_out:
                doc.kept[kept.branch] = f"checked out at {kept.checked_out}"
            elif not kept.merged:
                doc.kept[kept.branch] = integration.NOT_INTEGRATED
            elif dry_run:
                doc.deleted.append(kept.branch)
                doc.integrated[kept.branch] = integration.Verdict(kept.tip, kept.rule, kept.into).describe()
            else:
                deleted, why, rule = branches.delete_if_integrated(repo, kept.branch, target)
                if deleted:
                    doc.deleted.append(kept.branch)
                    doc.integrated[kept.branch] = rule or "integrated"
                else:
                    doc.kept[kept.branch] = why or "kept"
    return doc
