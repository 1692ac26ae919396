"""Ahead/behind of every lease's branch against its base, in a fixed number of git calls.

``git rev-list --left-right --count base...branch`` per lease costs one process per
lease: at 100 leases, most of ``worktree list``'s time. Here every name is resolved by
one ``git cat-file --batch-check``, the common ancestors of all the tips by one
``git merge-base --all --octopus``, and the commits reachable from some tip but not from
those ancestors by one ``git rev-list --topo-order --parents``. Each such commit gets a
bit mask of the tips it is reachable from (a tip's bit, passed from child to parent);
commits reachable from every tip are in no pair's difference, so leaving them out
changes no count. Then ``ahead`` is the number of commits whose mask has the branch's
bit but not the base's, ``behind`` the other way round: exactly what the per-pair
``rev-list --left-right --count`` gives.

Read-only (``GIT_OPTIONAL_LOCKS=0``), no lock taken.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from gitxact.git import run as git


@dataclass(frozen=True)
class Pair:
    """One lease's question: its base (the name, then the commit it started from) and branch."""

    base: str
    base_commit: str | None
    branch: str


def resolve(cwd: Path, names: list[str]) -> dict[str, str]:
    """Commit ids of the *names* that name a commit (one process for all of them)."""
    wanted = [name for name in dict.fromkeys(names) if name and "\n" not in name]
    if not wanted:
        return {}
    result = git.run(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd,
        check=False,
        read_only=True,
        input="".join(f"{name}^{{commit}}\n" for name in wanted),
    )
    found: dict[str, str] = {}
    for name, line in zip(wanted, result.stdout.splitlines(), strict=False):
        oid, _, kind = line.partition(" ")
        if kind == "commit":
            found[name] = oid
    return found


def ahead_behind(cwd: Path, pairs: list[Pair]) -> dict[Pair, tuple[int, int]]:
    """``(ahead, behind)`` of each pair's branch against its base; pairs whose branch or
    base (by name, else by the commit it started from) names no commit are left out."""
    names = [f"refs/heads/{p.branch}" for p in pairs] + [p.base for p in pairs]
    names += [p.base_commit for p in pairs if p.base_commit]
    oids = resolve(cwd, names)
    tips: dict[Pair, tuple[str, str]] = {}
    for pair in pairs:
        branch = oids.get(f"refs/heads/{pair.branch}")
        base = oids.get(pair.base) or (oids.get(pair.base_commit) if pair.base_commit else None)
        if branch is not None and base is not None:
            tips[pair] = (base, branch)
    if not tips:
        return {}
    distinct = sorted({oid for both in tips.values() for oid in both})
    bit = {oid: 1 << n for n, oid in enumerate(distinct)}
    common = git.run(["merge-base", "--all", "--octopus", *distinct], cwd, check=False, read_only=True).lines()
    walk = git.run(
        ["rev-list", "--topo-order", "--parents", *distinct, "--not", *common, "--"], cwd, read_only=True
    ).lines()
    masks: dict[str, int] = dict(bit)
    seen: list[str] = []
    for line in walk:  # children before parents
        commit, *parents = line.split()
        mask = masks.get(commit, 0)
        seen.append(commit)
        for parent in parents:
            masks[parent] = masks.get(parent, 0) | mask
    groups = Counter(masks[commit] for commit in seen)
    counts: dict[Pair, tuple[int, int]] = {}
    for pair, (base, branch) in tips.items():
        b, t = bit[base], bit[branch]
        ahead = sum(n for mask, n in groups.items() if mask & t and not mask & b)
        behind = sum(n for mask, n in groups.items() if mask & b and not mask & t)
        counts[pair] = (ahead, behind)
    return counts
