"""A lease's branch: the name given, the base it starts from, and deleting it only when integrated."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import InvalidNameError, UsageError
from gitxact.git import refs
from gitxact.git import run as git
from gitxact.worktrees import integration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def validate_branch(name: str) -> str:
    """A branch name the user passed with ``--branch``: git's rules, plus no option look-alikes.

    ``refs/heads/<name>`` goes through ``git check-ref-format`` (which also refuses
    ``@{``, ``..``, spaces, control characters). A leading ``-`` would read as an option
    to later git commands, ``HEAD`` and ``refs/...`` as something other than a branch.
    """
    shown = repr(name) if name else "''"
    if (
        not name
        or name.startswith("-")
        or name == "HEAD"
        or name.startswith("refs/")
        or not git.check_ref_format(f"refs/heads/{name}")
    ):
        raise InvalidNameError(
            f"invalid branch name {shown}",
            hint="give a plain branch name git accepts (git check-ref-format --branch), e.g. feature/x",
        )
    return name


def resolve_base(repo: Repo, base: str | None, main: git.WorktreeEntry | None = None) -> tuple[str, str]:
    """``(label, commit)`` of the base: the name as given when it is a local or remote
    branch (so ahead/behind follows it as it moves), else the commit id.

    Default: what the main worktree has checked out, read from *main* (its entry in
    ``git worktree list``, which the caller has anyway) when given.
    """
    cwd = repo.layout.common_dir
    if base is None:
        if main is not None and main.head and not main.bare:
            label = main.branch.removeprefix("refs/heads/") if main.branch else main.head
            return label, main.head
        commit = git.rev_parse(cwd, "HEAD^{commit}")
        if commit is None:
            raise UsageError("the repository has no commit yet (unborn HEAD)", hint="commit something, or pass --base")
        symbolic = git.run(["symbolic-ref", "-q", "HEAD"], cwd, check=False, read_only=True)
        label = symbolic.stdout.strip().removeprefix("refs/heads/") if symbolic.ok else commit
        return label or commit, commit
    if not base or base.startswith("-") or "\n" in base:
        raise UsageError(f"invalid --base {base!r}", hint="name a branch, tag or commit")
    commit = git.rev_parse(cwd, f"{base}^{{commit}}")
    if commit is None:
        raise UsageError(f"--base {base!r} does not name a commit", hint="name a branch, tag or commit")
    full = git.run(["rev-parse", "--symbolic-full-name", "--end-of-options", base], cwd, check=False, read_only=True)
    # git 2.39 echoes ``--end-of-options`` itself in this mode: the answer is the last line.
    named = full.lines()[-1] if full.ok and full.lines() else ""
    if named.startswith(("refs/heads/", "refs/remotes/")):
        return base, commit  # a branch: ahead/behind follows it as it moves
    return commit, commit


def owns_branch(repo: Repo, lease: Lease) -> bool:
    """gitxact may delete only branches it made, or the agent's own ``<prefix><agent>``."""
    return lease.branch_created or lease.branch == f"{repo.settings.branch_prefix}{lease.agent}"


def delete_if_integrated(repo: Repo, branch: str, base: str | None = None) -> tuple[bool, str | None, str | None]:
    """Delete *branch* if it is integrated (:func:`gitxact.worktrees.integration.judge`).

    Returns ``(deleted, why_kept, rule)``, *rule* the integration rule that matched. One
    ``for-each-ref --contains`` answers the ``merged`` rule, the tip and where it is
    checked out; the delete is a compare-and-swap against that tip, so a commit landing
    in between keeps the branch. Asked first about *base* alone (the lease's base, when
    it is a branch: where a merged branch usually is), so the common case costs the same
    however many branches there are; only when the base does not contain it are all
    branches asked, and then the other rules, against *base*.
    """
    cwd = repo.layout.common_dir
    full = f"refs/heads/{branch}"
    tip: str | None = None
    into: str | None = None
    scopes = [[full, f"refs/heads/{base}"]] if base and base != branch else []
    for scope in [*scopes, ["refs/heads/"]]:
        tip, into, where = _containing(cwd, full, scope)
        if where:
            return False, f"branch is checked out at {where}", None
        if tip is None or into:
            break
    if tip is None:
        return False, "branch no longer exists", None
    verdict = integration.judge(repo, branch, tip, [base] if base else [], merged_into=into or False)
    if not verdict.integrated:
        return (
            False,
            f"{integration.NOT_INTEGRATED} (tip {tip[:12]}); kept so no work is lost",
            None,
        )
    try:
        refs.apply(cwd, [refs.RefUpdate(full, None, tip)], message="gitxact: lease ended", env=repo.locks.child_env())
    except refs.RefConflictError:
        return False, "branch moved while it was being deleted; kept", None
    from gitxact.worktrees import landed  # pydantic: only once a branch is deleted

    landed.forget(repo, branch)
    return True, None, verdict.describe()


def _containing(cwd: Path, full: str, scope: list[str]) -> tuple[str | None, str | None, str]:
    """*full*'s tip, another branch in *scope* that contains it, and where *full* is checked out."""
    result = git.run(
        ["for-each-ref", f"--contains={full}", "--format=%(objectname) %(refname) %(worktreepath)", *scope],
        cwd,
        check=False,
        read_only=True,
    )
    tip: str | None = None
    where = ""
    into: str | None = None
    for line in result.lines():
        oid, _, rest = line.partition(" ")
        name, _, checked_out = rest.partition(" ")
        if name == full:
            tip, where = oid, checked_out
        elif into is None:
            into = name.removeprefix("refs/heads/")
    return tip, into, where
