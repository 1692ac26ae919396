"""The gc guard: no git command may destroy what an active lease's agent is working on.

``git gc``, ``prune``, ``worktree prune``, ``repack -d``, ``maintenance run`` and
``reflog expire`` can delete objects and worktree records that a working agent still
needs (unreachable-yet commits, a worktree whose folder is briefly missing). So while
any lease is active they are refused with exit 3 and the list of leases; so are the
removal, move or unlock of a *leased* worktree, the deletion or rename of a *leased*
branch, and ``update-ref -d`` of a leased branch or of a ``refs/gitxact/*`` ref (those
keep savepoints and snapshots alive). ``gitxact gc --force`` is the deliberate override.

Checks run while the caller holds the lock the command needs (repository exclusive for
all of these), and lease creation takes that lock too, so no lease can appear between
the check and the command.
"""

from __future__ import annotations

import os

from gitxact.errors import RefusedError
from gitxact.gx import rules
from gitxact.gx.cmdline import has_option, positionals
from gitxact.leases import reader as lease_reader
from gitxact.leases.reader import LeaseView
from gitxact.util import console

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.gx.cmdline import Invocation

_WHY = {
    rules.ANY_LEASE: "can delete objects and worktree records that active leases still need",
    rules.LEASED_WORKTREE: "would remove, move or unlock a leased worktree",
    rules.LEASED_BRANCH: "would delete or rename a leased branch",
    rules.PROTECTED_REF: "would delete a ref that an active lease's work depends on",
}
_HINT = (
    "end the lease(s) first (`gitxact worktree release AGENT`; leases whose owner died end with"
    " `gitxact worktree reap` or `gitxact recover`)"
)


def check(invocation: Invocation, rule: rules.Rule, leases: list[LeaseView]) -> None:
    """Raise :class:`RefusedError` (exit 3) if *invocation* would hurt one of *leases*."""
    if rule.guard is None or not leases:
        return
    hurt = affected(invocation, rule.guard, leases)
    if hurt:
        shown = " ".join(["git", invocation.command or "", *invocation.args]).strip()
        hint = _HINT + ("; `gitxact gc --force` overrides this for gc" if invocation.command == "gc" else "")
        every = rule.guard == rules.ANY_LEASE
        raise RefusedError(refusal(f"`{shown}`", _WHY[rule.guard], hurt, every=every), hint=hint)


def refusal(what: str, why: str, leases: list[LeaseView], *, every: bool = True) -> str:
    """The message: what was refused, why, and the leases (agent, worktree, branch)."""
    count = f"{len(leases)} lease(s) active" if every else "the lease"
    lines = [f"refused: {what} {why}; {count}:"]
    lines += [f"  {lease.describe()}" for lease in leases]
    return "\n".join(lines)


def affected(invocation: Invocation, guard: str, leases: list[LeaseView]) -> list[LeaseView]:
    """The leases *invocation* would hurt, for one guard kind."""
    args = invocation.args
    if guard == rules.ANY_LEASE:
        return leases
    if guard == rules.LEASED_WORKTREE:
        words = positionals(args)
        target = words[1] if len(words) > 1 else None
        return [] if target is None else _leased_worktrees(invocation.workdir(os.getcwd()), target, leases)
    if guard == rules.LEASED_BRANCH:
        return _leased_branches(invocation, leases)
    if guard == rules.PROTECTED_REF:
        words = positionals(args, frozenset({"-m"}))
        ref = words[0] if words else ""
        if ref.startswith("refs/gitxact/"):
            return leases
        lease = lease_reader.for_branch(leases, ref) if ref.startswith("refs/heads/") else None
        return [lease] if lease else []
    raise AssertionError(f"unknown guard kind {guard!r}")  # pragma: no cover - a table bug


def _leased_worktrees(workdir: str, target: str, leases: list[LeaseView]) -> list[LeaseView]:
    """git names a worktree by path, or by its last path components when unique."""
    by_path = lease_reader.for_path(leases, os.path.join(workdir, target))
    if by_path is not None:
        return [by_path]
    tail = os.sep + os.path.normpath(target).strip(os.sep)
    return [lease for lease in leases if os.path.normpath(lease.path).endswith(tail)]


def _leased_branches(invocation: Invocation, leases: list[LeaseView]) -> list[LeaseView]:
    args = invocation.args
    if has_option(args, frozenset({"-r", "--remotes"})):
        return []  # remote-tracking branches are never leased
    names = positionals(args, rules.BRANCH_VALUES)
    if has_option(args, frozenset({"-m", "-M", "--move"})):
        if len(names) >= 2:
            names = names[:1]
        else:  # `branch -m NEW` renames the current branch
            from gitxact.git import run as git  # this case only: the runner imports subprocess

            head = git.run(
                [*invocation.locating, "symbolic-ref", "-q", "--short", "HEAD"],
                os.getcwd(),
                check=False,
                keep_repo_env=True,
                read_only=True,
            )
            names = [head.stdout.strip()] if head.ok else []
    found = [lease_reader.for_branch(leases, name) for name in names]
    return [lease for lease in found if lease is not None]


def gc(repo: Repo, args: list[str], *, force: bool) -> int:
    """``gitxact gc``: ``git gc ARGS`` under the exclusive repository lock; git's exit code.

    Refused (exit 3) while any lease is active, unless *force*. Even forced, leased
    worktrees stay safe from ``worktree prune`` (they are ``git worktree lock``ed) and
    refs keep savepoints alive; what is lost is only unreachable work in progress.
    """
    from gitxact.git import run as git

    with repo.lock():
        leases = lease_reader.load(repo.layout.common_dir)
        if leases and not force:
            repo.locks.events.emit("refusal", repo.attribution, by="gc", what="gitxact gc")
            raise RefusedError(refusal("`gitxact gc`", _WHY[rules.ANY_LEASE], leases), hint=_HINT + " or --force")
        if leases:
            console.warn(f"running gc with {len(leases)} active lease(s) because of --force")
        where = repo.layout.worktree or repo.layout.git_dir
        return git.run_streaming(["gc", *args], where, env=repo.locks.child_env(), keep_repo_env=False)
