"""Foresight: which leased branches would conflict, with the target and with each other.

A conflict between two agents otherwise shows only when the second one lands. Every
answer here comes from ``git merge-tree --write-tree`` (git 2.38+): a real three-way
merge of two commits, done in the object database alone, so no worktree, index or ref
is touched (it writes the merged trees' objects, unreferenced, which gc drops). Against
the target it answers "would this branch merge cleanly now"; a rebase replays the
commits one by one and can stop where the merge of the tips would not, but the paths a
rebase conflicts on are the paths the merge does, which is what an agent needs to know.

Answers are kept by the two commits' ids (a merge of the same two commits always gives
the same answer), in memory for one call, so a pair is merged once however often it is
asked about.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.core.repo import Repo
from gitxact.errors import OperationFailedError, UsageError
from gitxact.git import refs
from gitxact.leases import records as leases

if TYPE_CHECKING:
    from gitxact.land.results import LandDoc
    from gitxact.worktrees.lease_info import LeaseInfo

#: merge-tree processes at once: git spends most of a small merge starting up and
#: reading objects, so two overlap well on the two cores the suite and CI have.
WORKERS = 2


class TargetCheck(BaseModel):
    """One leased branch against the target: would it merge cleanly, and where not."""

    agent: str
    branch: str
    tip: str
    clean: bool
    paths: list[str] = Field(default_factory=list)
    #: Already integrated into the target (``landed on main``, ``merged into main``...: the
    #: rule :mod:`gitxact.worktrees.integration` found): nothing of it is left to conflict,
    #: so it is in no pair.
    integrated: str | None = None


class PairCheck(BaseModel):
    """Two leased branches that would conflict with each other, and the paths they both change."""

    agents: list[str]
    branches: list[str]
    paths: list[str]


class ConflictsDoc(Document):
    """``gitxact conflicts --json``: every live lease against the target and against each other."""

    target: str
    target_tip: str
    clean: bool
    against_target: list[TargetCheck]
    #: Only the pairs that would conflict; ``pairs_checked`` says how many were merged.
    pairs: list[PairCheck]
    pairs_checked: int


class MergeTrees:
    """``git merge-tree`` answers for pairs of commits, each pair merged at most once."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._known: dict[tuple[str, str], list[str]] = {}
        self._integrated: dict[tuple[str, str, str], str | None] = {}

    def integrated(self, branch: str, tip: str, target: str, target_tip: str) -> str | None:
        """Whether *branch* at *tip* is integrated into *target* (at *target_tip*): the rule, as
        a phrase, or ``None``; asked once per three commits (a landing moves the target)."""
        key = (branch, tip, target_tip)
        if key not in self._integrated:
            from gitxact.worktrees import integration

            verdict = integration.judge(self.repo, branch, tip, [target])
            self._integrated[key] = verdict.describe() if verdict.integrated else None
        return self._integrated[key]

    def conflicts(self, ours: str, theirs: str) -> list[str]:
        """The paths a merge of *ours* and *theirs* conflicts on (empty: it merges cleanly)."""
        key = (ours, theirs) if ours <= theirs else (theirs, ours)
        known = self._known.get(key)
        if known is None:
            known = self._known[key] = self._merge(*key)
        return known

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Merge every pair not known yet, :data:`WORKERS` at a time."""
        todo = sorted({(a, b) if a <= b else (b, a) for a, b in pairs} - self._known.keys())
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            for key, paths in zip(todo, pool.map(lambda pair: self._merge(*pair), todo), strict=True):
                self._known[key] = paths

    def _merge(self, ours: str, theirs: str) -> list[str]:
        result = self.repo.git(
            ["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs],
            cwd=self.repo.layout.common_dir,
            check=False,
            read_only=True,
        )
        if result.returncode not in (0, 1):
            if "write-tree" in result.stderr and ("unknown option" in result.stderr or "usage:" in result.stderr):
                raise OperationFailedError(
                    "seeing conflicts coming needs git 2.38 or newer (git merge-tree --write-tree)",
                    hint="upgrade git; `gitxact land` itself still refuses conflicts when they happen",
                )
            raise OperationFailedError(
                f"git merge-tree {ours[:12]} {theirs[:12]} failed: {result.stderr.strip() or result.returncode}"
            )
        fields = [field for field in result.stdout.split("\0") if field]
        # The first field is the merged tree's id; with --name-only each one after it is a path.
        return sorted(set(fields[1:])) if result.returncode == 1 else []


def default_target(repo: Repo) -> str:
    """The branch checked out in the main worktree: where agents' work usually lands."""
    main = repo.layout.main_worktree
    if main is not None:
        result = repo.git(["symbolic-ref", "-q", "--short", "HEAD"], cwd=main, check=False, read_only=True)
        if result.ok and result.stdout.strip():
            return result.stdout.strip()
    raise UsageError("no target branch: the main worktree has none checked out", hint="pass --onto TARGET")


def target_tip(repo: Repo, target: str) -> str:
    tip = refs.read(repo.layout.common_dir, f"refs/heads/{target}")
    if tip is None:
        raise UsageError(f"there is no branch {target!r}", hint="name the branch agents land onto, e.g. --onto main")
    return tip


def conflicts(repo: Repo, onto: str, *, merges: MergeTrees | None = None) -> ConflictsDoc:
    """Every live lease's branch against *onto* and against every other live lease's branch.

    *merges* keeps its answers between calls (``watch`` asks every second; only pairs of
    commits it has not merged yet cost a ``git merge-tree``).
    """
    from gitxact.land.candidate import check_target

    target = check_target(onto)
    tip = target_tip(repo, target)
    tips: list[tuple[str, str, str]] = []  # (agent, branch, tip) of leases whose branch exists
    for lease in leases.active(repo):
        if lease.phase != "active":
            continue
        branch_tip = refs.read(repo.layout.common_dir, lease.branch)
        if branch_tip is not None:
            tips.append((lease.agent, lease.branch.removeprefix("refs/heads/"), branch_tip))
    merges = merges if merges is not None else MergeTrees(repo)
    done = {agent: merges.integrated(branch, branch_tip, target, tip) for agent, branch, branch_tip in tips}
    live = [entry for entry in tips if done[entry[0]] is None]
    pairs = [(live[i], live[j]) for i in range(len(live)) for j in range(i + 1, len(live))]
    merges.prefetch([(tip, t) for _, _, t in live] + [(a[2], b[2]) for a, b in pairs if a[2] != b[2]])
    against = []
    for agent, branch, branch_tip in tips:
        paths = [] if done[agent] else merges.conflicts(tip, branch_tip)
        against.append(
            TargetCheck(
                agent=agent, branch=branch, tip=branch_tip, clean=not paths, paths=paths, integrated=done[agent]
            )
        )
    conflicting = []
    for (agent_a, branch_a, tip_a), (agent_b, branch_b, tip_b) in pairs:
        paths = [] if tip_a == tip_b else merges.conflicts(tip_a, tip_b)
        if paths:
            conflicting.append(PairCheck(agents=[agent_a, agent_b], branches=[branch_a, branch_b], paths=paths))
    return ConflictsDoc(
        target=target,
        target_tip=tip,
        clean=all(check.clean for check in against) and not conflicting,
        against_target=against,
        pairs=conflicting,
        pairs_checked=len(pairs),
    )


def annotate(repo: Repo, infos: list[LeaseInfo], onto: str, *, merges: MergeTrees | None = None) -> None:
    """Set each listed lease's ``conflicts`` (the target and the other live leases its branch
    would conflict with, by the paths), from the one reckoning :func:`conflicts` makes."""
    doc = conflicts(repo, onto, merges=merges)
    found: dict[str, dict[str, list[str]]] = {check.agent: {} for check in doc.against_target}
    for check in doc.against_target:
        if check.paths:
            found[check.agent][doc.target] = check.paths
    for pair in doc.pairs:
        first, second = pair.agents
        found[first][second] = pair.paths
        found[second][first] = pair.paths
    for info in infos:
        info.conflicts = found.get(info.agent)


class DryRunDoc(Document):
    """``gitxact land --dry-run --json``: would this branch land now, and where in the queue.

    Nothing is filed and no ref moves; the check is not run (it would run on the
    candidate, which a dry run does not build).
    """

    branch: str
    tip: str
    target: str
    remote: str | None
    target_tip: str
    would_land: bool
    already: bool
    conflicts: list[str] = Field(default_factory=list)
    #: Requests for the same target already waiting or being served: this one would come after them.
    ahead: int
    reason: str


def dry_run(repo: Repo, *, onto: str, branch: str, remote: str | None = None) -> DryRunDoc:
    """What ``land`` would do with *branch* onto *onto* now, without filing a request or moving a ref."""
    from gitxact.land.candidate import check_target, remote_url
    from gitxact.land.store import open_landing

    target = check_target(onto)
    name = branch.removeprefix("refs/heads/")
    tip = refs.read(repo.layout.common_dir, f"refs/heads/{name}") if name and not name.startswith("-") else None
    if tip is None:
        raise UsageError(f"there is no branch {name!r} to land", hint="name a local branch")
    url = remote_url(repo, remote) if remote is not None else None
    onto_tip = target_tip(repo, target) if remote is None else _remote_tip(repo, remote, target)
    lf = open_landing(repo)
    try:
        state = lf.peek()
        queue = lf.queue_of(target, url)
        ahead = len(state.pending(queue)) + sum(len(work.requests) for work in state.work_of(queue))
    finally:
        lf.close()
    already = _is_ancestor(repo, tip, onto_tip)
    paths = [] if already else MergeTrees(repo).conflicts(onto_tip, tip)
    if already:
        reason = f"{name} is already on {target}"
    elif paths:
        reason = f"it conflicts with {target} in: {', '.join(paths)}"
    else:
        reason = f"it would land onto {target} (after {ahead} request(s) ahead; its check, if any, not run)"
    return DryRunDoc(
        branch=name,
        tip=tip,
        target=target,
        remote=remote,
        target_tip=onto_tip,
        would_land=not paths,
        already=already,
        conflicts=paths,
        ahead=ahead,
        reason=reason,
    )


def _is_ancestor(repo: Repo, commit: str, of: str) -> bool:
    result = repo.git(["merge-base", "--is-ancestor", commit, of], cwd=repo.layout.common_dir, check=False)
    return result.returncode == 0


def _remote_tip(repo: Repo, remote: str, target: str) -> str:
    """The remote target's tip, its objects fetched with no ref written (a dry run moves no ref)."""
    result = repo.git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"refs/heads/{target}"],
        cwd=repo.layout.common_dir,
        check=False,
    )
    listed = repo.git(["ls-remote", "--heads", remote, f"refs/heads/{target}"], cwd=repo.layout.common_dir, check=False)
    fields = listed.stdout.split()
    if not result.ok or not listed.ok or not fields:
        raise OperationFailedError(
            f"could not read {target} of {remote}: {(result.stderr or listed.stderr).strip() or 'no such branch'}"
        )
    return fields[0]


def explain_conflict(repo: Repo, doc: LandDoc) -> LandDoc:
    """*doc* (a land refused for a conflict) with what an agent needs to act on it.

    The target's commits since the branch's base that touched the conflicting paths, the
    other live leases whose branches change those paths as well (they will meet the same
    conflict, or have caused it), and the commands that resolve it, in order.
    """
    paths = doc.conflicts
    onto_tip = refs.read(repo.layout.common_dir, f"refs/heads/{doc.target}") if doc.remote is None else None
    commits: list[str] = []
    if onto_tip is not None:
        base = _merge_base(repo, doc.tip, onto_tip)
        if base is not None:
            listed = repo.git(
                ["log", "--format=%H", f"{base}..{onto_tip}", "--", *paths],
                cwd=repo.layout.common_dir,
                check=False,
                read_only=True,
            )
            commits = listed.stdout.split() if listed.ok else []
    others: list[str] = []
    for lease in leases.active(repo):
        if lease.phase != "active" or lease.branch.removeprefix("refs/heads/") == doc.branch:
            continue
        tip = refs.read(repo.layout.common_dir, lease.branch)
        base = _merge_base(repo, tip, onto_tip or doc.tip) if tip is not None else None
        if tip is None or base is None or base == tip:
            continue
        changed = repo.git(
            ["diff", "--name-only", "-z", base, tip, "--", *paths], cwd=repo.layout.common_dir, check=False
        ).zfields()
        if changed:
            others.append(lease.agent)
    if doc.remote is None:
        update = [f"gx rebase {doc.target}"]
        again = f"gitxact land {doc.branch} --onto {doc.target}"
    else:  # a remote may be a URL or a path: its target is fetched by name, not as <remote>/<target>
        update = [f"gx fetch {doc.remote} {doc.target}", "gx rebase FETCH_HEAD"]
        again = f"gitxact land {doc.branch} --onto {doc.target} --remote {doc.remote}"
    steps = [*update, "gx rebase --continue", again]
    return doc.model_copy(update={"conflict_commits": commits, "conflict_leases": others, "next_steps": steps})


def _merge_base(repo: Repo, a: str, b: str) -> str | None:
    result = repo.git(["merge-base", a, b], cwd=repo.layout.common_dir, check=False, read_only=True)
    return result.stdout.strip() or None if result.ok else None
