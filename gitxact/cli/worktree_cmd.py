"""``gitxact worktree acquire|release|renew|list|reap``."""

from __future__ import annotations

import os

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import (
    conflicts_option,
    conflicts_target,
    dirty_option,
    json_option,
    pass_app,
    show,
    sizes_option,
    timeout_option,
)
from gitxact.cli.render import (
    render_acquire,
    render_fleet,
    render_kept_branches,
    render_lease_list,
    render_prune_branches,
    render_reap,
    render_release,
)
from gitxact.errors import OperationFailedError, UsageError
from gitxact.leases.reader import TOKEN_ENV
from gitxact.util.identity import OWNER_PID_ENV


def token_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--token",
        envvar=TOKEN_ENV,
        metavar="TOKEN",
        help=f"The lease's token, as printed by acquire (or set {TOKEN_ENV}, which keeps it out of `ps`).",
    )(func)


@click.group()
def worktree() -> None:
    """Lease worktrees and branches to agents: one each, never shared, never pruned while live.

    \b
    Examples:
      gitxact worktree acquire agent-7 --json
      gitxact worktree list
      gitxact worktree release agent-7 --token "$TOKEN"
      gitxact worktree reap --dry-run
    """


@worktree.command()
@click.argument("agent")
@click.option(
    "--base", metavar="REF", help="Start a new branch here (default: what the main worktree has checked out)."
)
@click.option("--branch", metavar="NAME", help="Branch to lease (default: gitxact.branchPrefix + AGENT).")
@click.option(
    "--owner-pid",
    type=int,
    envvar=OWNER_PID_ENV,
    metavar="PID",
    help="The process whose life the lease follows (default: this command's parent, e.g. your shell).",
)
@click.option("--resume", is_flag=True, help="The agent's branch is left from an earlier lease: continue on it.")
@click.option(
    "--fresh",
    is_flag=True,
    help="The agent's branch is left from an earlier lease: start it again from the base (its commits kept).",
)
@click.option(
    "--keep-failed", is_flag=True, help="If .gitxact.toml's setup fails, keep the lease to look into (exit 1 still)."
)
@click.option(
    "--sparse",
    "sparse",
    multiple=True,
    metavar="FOLDER",
    help="Check out only FOLDER (repeatable; cone mode: the top's files too). Default: .gitxact.toml's lease.sparse.",
)
@click.option("--no-sparse", is_flag=True, help="Check out every file, whatever .gitxact.toml's lease.sparse says.")
@token_option
@timeout_option
@json_option
@pass_app
def acquire(
    app: AppContext,
    agent: str,
    base: str | None,
    branch: str | None,
    owner_pid: int | None,
    resume: bool,
    fresh: bool,
    keep_failed: bool,
    sparse: tuple[str, ...],
    no_sparse: bool,
    token: str | None,
    timeout: float | None,
    as_json: bool,
) -> int:
    """Lease a fresh worktree and branch to AGENT; prints its path and a secret token.

    The worktree is created `git worktree lock`ed. The token is printed once: keep it
    for release/renew. The lease's owner is this command's parent process unless
    --owner-pid (or GITXACT_OWNER_PID) says otherwise; once the owner dies `reap` may
    end it (while it runs, never; an owner that cannot be checked from here, after
    gitxact.leaseTtl seconds without a heartbeat).
    Inside $(... | ...) the parent is a subshell that exits at once: pass --owner-pid $$.
    Asking again while the lease lives returns the same worktree, with "existing": true and no token (unless
    --token presents it). Exit 3 if the branch is checked out elsewhere, or if the
    agent's branch is left from an earlier lease, is ahead of or behind the base and is
    not integrated (an integrated one, landed say, starts again from the base): say
    --resume (continue on it) or --fresh (start again from the base; its commits are
    kept on a branch of their own).

    The commit checked out may carry a .gitxact.toml: its [lease] ports are allocated
    (GITXACT_PORT, GITXACT_PORTS), and its setup commands run in the new worktree once
    the clone trusts them (`gitxact trust`; else exit 3, nothing made). Their log is
    named; a failing setup is exit 1 and leaves nothing behind, unless --keep-failed.
    With --sparse FOLDER (or the file's lease.sparse) only those folders are checked out.

    \b
    Examples:
      gitxact worktree acquire agent-7
      gitxact worktree acquire agent-7 --sparse services/api --sparse libs/common
      TOKEN=$(gitxact worktree acquire agent-7 --owner-pid $$ --json | jq -r .token)
    """
    if resume and fresh:
        raise UsageError("--resume and --fresh contradict each other", hint="give one of them")
    if sparse and no_sparse:
        raise UsageError("--sparse and --no-sparse contradict each other", hint="give one of them")
    reuse = "resume" if resume else "fresh" if fresh else None
    pid = os.getppid() if owner_pid is None else owner_pid
    doc = app.workspace(timeout=timeout).worktrees.acquire(
        agent,
        base=base,
        branch=branch,
        token=token,
        owner_pid=pid,
        reuse=reuse,
        keep_failed=keep_failed,
        sparse=() if no_sparse else sparse or None,
    )
    show(doc, as_json, lambda: render_acquire(doc))
    if doc.setup_failed:
        click.echo(f"gitxact: {doc.setup_failed}; the lease was kept (--keep-failed)", err=True)
        return 1
    return 0


@worktree.command()
@click.argument("agent")
@token_option
@click.option("--keep-branch", is_flag=True, help="Keep the branch even if it is integrated (merged, landed, ...).")
@click.option("--force", is_flag=True, help="Release without the token; save uncommitted work to a snapshot ref first.")
@timeout_option
@json_option
@pass_app
def release(
    app: AppContext, agent: str, token: str | None, keep_branch: bool, force: bool, timeout: float | None, as_json: bool
) -> int:
    """End AGENT's lease: remove its worktree; delete its branch if integrated.

    Refused (exit 3) without the right token, or when the worktree has uncommitted or
    untracked work; --force saves that work to refs/gitxact/snapshots/AGENT/TIME first.
    Integrated: merged into another branch, landed by `gitxact land` (and unchanged
    since), every patch upstream (git cherry), or squash-merged (merging it changes
    nothing).

    The lease's .gitxact.toml teardown commands run before its files go; one that
    fails is reported and the release goes on.

    \b
    Examples:
      gitxact worktree release agent-7 --token "$TOKEN"
      gitxact worktree release agent-7 --force --keep-branch
    """
    doc = app.workspace(timeout=timeout).worktrees.release(agent, token=token, force=force, keep_branch=keep_branch)
    show(doc, as_json, lambda: render_release(doc))
    return 0


@worktree.command()
@click.argument("agent")
@token_option
@click.option("--force", is_flag=True, help="Renew without the token.")
@timeout_option
@json_option
@pass_app
def renew(app: AppContext, agent: str, token: str | None, force: bool, timeout: float | None, as_json: bool) -> int:
    """Heartbeat: AGENT's lease lives another gitxact.leaseTtl seconds from now.

    \b
    Example:
      gitxact worktree renew agent-7 --token "$TOKEN"
    """
    doc = app.workspace(timeout=timeout).worktrees.renew(agent, token=token, force=force)
    show(doc, as_json, lambda: f"renewed {agent}: expires in {doc.ttl:g}s")
    return 0


@worktree.command(name="list")
@click.option("--branches", "kept", is_flag=True, help="The branches leases left behind instead, merged or not.")
@click.option(
    "--all-hosts", is_flag=True, help="Every host's leased agents, from the fleet's registry (PostgreSQL backend)."
)
@dirty_option
@sizes_option
@conflicts_option
@json_option
@pass_app
def list_(
    app: AppContext,
    kept: bool,
    all_hosts: bool,
    dirty: bool | None,
    sizes: bool,
    conflicts: bool,
    conflicts_onto: str | None,
    as_json: bool,
) -> int:
    """Every lease: path, branch, owner alive?, age, heartbeat, ahead/behind, and (--dirty,
    or --json) whether its worktree holds uncommitted work; each one's size on disk as
    recorded at acquire, with its age, and the total (--sizes measures them again).

    With --branches: the branches under gitxact.branchPrefix that no lease uses, each
    with the rule that makes it integrated (merged, landed, patches upstream,
    squash-merged) or unmerged.

    \b
    Examples:
      gitxact worktree list
      gitxact worktree list --dirty
      gitxact worktree list --sizes
      gitxact worktree list --conflicts --onto main
      gitxact worktree list --json | jq '.leases[] | select(.dirty)'
      gitxact worktree list --branches
    """
    if all_hosts:
        return _list_fleet(app, as_json)
    if kept:
        from gitxact.worktrees.kept import kept_branches

        branches_doc = kept_branches(app.workspace())
        show(branches_doc, as_json, lambda: render_kept_branches(branches_doc))
        return 0
    from gitxact.worktrees.listing import collect  # not ws.worktrees: the manager imports pydantic

    checked = as_json if dirty is None else dirty
    onto = conflicts_target(app, conflicts, conflicts_onto)
    doc = collect(app.workspace(), dirty=checked, sizes=sizes)
    if onto is not None and doc.leases:
        from gitxact.land.foresight import annotate

        annotate(app.workspace(), doc.leases, onto)
    show(doc, as_json, lambda: render_lease_list(doc, dirty=checked))
    return 0


@worktree.command(name="env")
@click.argument("agent")
@pass_app
def env_(app: AppContext, agent: str) -> int:
    """Print AGENT's lease variables as `export` lines, for the agent's shell.

    GITXACT_AGENT, GITXACT_BRANCH, GITXACT_WORKTREE and, when the lease has ports,
    GITXACT_PORT (the first) and GITXACT_PORTS (all, comma-separated): what its setup saw.
    Exit 1 if AGENT holds no lease.

    \b
    Example:
      eval "$(gitxact worktree env agent-7)"
    """
    from gitxact.leases import records
    from gitxact.worktrees import setup

    lease = records.for_agent(app.workspace(), agent)
    if lease is None:
        raise OperationFailedError(f"agent {agent!r} holds no lease", hint="`gitxact worktree list` shows leases")
    click.echo(setup.export_lines(setup.lease_env(lease)), nl=False)
    return 0


@worktree.command(name="prune-branches")
@click.option("--merged", is_flag=True, help="Only integrated branches (the default, and the only kind ever deleted).")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
@timeout_option
@json_option
@pass_app
def prune_branches(app: AppContext, merged: bool, dry_run: bool, timeout: float | None, as_json: bool) -> int:
    """Delete the branches leases left behind that are integrated (see `list --branches`).

    Each by compare-and-swap under the repository lock; never one a lease uses, one
    checked out anywhere, or one that is not integrated (those are listed as kept,
    with why). Nothing here deletes unmerged work.

    \b
    Examples:
      gitxact worktree prune-branches --dry-run
      gitxact worktree prune-branches --merged
    """
    from gitxact.worktrees.kept import prune_merged

    doc = prune_merged(app.workspace(timeout=timeout), dry_run=dry_run)
    show(doc, as_json, lambda: render_prune_branches(doc))
    return 0


@worktree.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be done.")
@timeout_option
@json_option
@pass_app
def reap(app: AppContext, dry_run: bool, timeout: float | None, as_json: bool) -> int:
    """End leases whose owner died on this host or, where it cannot be checked, whose
    TTL passed; never a live one (its owner runs here, whatever its heartbeat).

    Also finishes interrupted acquires and releases, and removes git's record of
    leased worktrees whose folder was deleted. Uncommitted work is saved to
    refs/gitxact/snapshots/AGENT/TIME first. On PostgreSQL, also ends the fleet's
    claims that expired (any host's) or whose owner died on this host; another
    host's live claim is never touched. Exit 1 if some step failed, 75 if the
    database cannot be reached (then nothing was done).

    \b
    Examples:
      gitxact worktree reap --dry-run
      gitxact worktree reap --json
    """
    doc = app.workspace(timeout=timeout).worktrees.reap(dry_run=dry_run)
    show(doc, as_json, lambda: render_reap(doc))
    return 1 if doc.errors else 0


def _list_fleet(app: AppContext, as_json: bool) -> int:
    """``worktree list --all-hosts``: the registry's claims, or a usage error on files."""
    from gitxact.worktrees import fleet

    doc = fleet.claims(app.workspace())
    if doc is None:
        raise UsageError(
            "--all-hosts needs the PostgreSQL backend (one host's leases are `gitxact worktree list`)",
            hint="gitxact init --backend postgresql://...",
        )
    show(doc, as_json, lambda: render_fleet(doc))
    return 0
