"""``gitxact snapshots list|show|restore|drop|expire``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, pass_app, show, timeout_option
from gitxact.util.console import style, table

if TYPE_CHECKING:
    from gitxact.snapshots.results import DropDoc, RestoreDoc, SnapshotListDoc, SnapshotShowDoc


def agent_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option("--agent", metavar="AGENT", help="Only this agent's snapshots.")(func)


def older_than_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--older-than", metavar="DURATION", help="Only snapshots taken more than DURATION ago (30m, 12h, 7d)."
    )(func)


@click.group()
def snapshots() -> None:
    """Uncommitted work gitxact kept (refs/gitxact/snapshots/): list, show, restore, drop.

    A released, reaped or recovered lease leaves its uncommitted and untracked files in
    a snapshot; so does a failed TDD check, and every transaction savepoint. They are
    kept until dropped, or until git config gitxact.snapshotExpiry passes (applied by
    `gitxact gc` and `gitxact snapshots expire`); never while their lease or
    transaction is live.

    \b
    Examples:
      gitxact snapshots list --agent agent-7
      gitxact snapshots show agent-7/20260130T102822.050885Z
      gitxact snapshots restore agent-7/20260130T102822.050885Z --into agent-7
      gitxact snapshots drop --older-than 7d
    """


@snapshots.command(name="list")
@agent_option
@older_than_option
@json_option
@pass_app
def list_(app: AppContext, agent: str | None, older_than: str | None, as_json: bool) -> int:
    """List snapshots, oldest first, with their kind, age, source worktree and protection.

    \b
    Examples:
      gitxact snapshots list
      gitxact snapshots list --agent agent-7 --older-than 12h --json
    """
    doc = app.workspace().snapshots.list(agent=agent, older_than=older_than)
    show(doc, as_json, lambda: render_list(doc))
    return 0


@snapshots.command(name="show")
@click.argument("snapshot")
@json_option
@pass_app
def show_(app: AppContext, snapshot: str, as_json: bool) -> int:
    """Show one snapshot: where and when it was taken, its files as `git status` saw them.

    SNAPSHOT is its name as listed (or the full ref).

    \b
    Examples:
      gitxact snapshots show agent-7/20260130T102822.050885Z
      gitxact snapshots show refs/gitxact/snapshots/agent-7/20260130T102822.050885Z --json
    """
    doc = app.workspace().snapshots.show(snapshot)
    show(doc, as_json, lambda: render_show(doc))
    return 0


@snapshots.command()
@click.argument("snapshot")
@click.option(
    "--into", metavar="WORKTREE", help="A worktree folder, or an agent whose leased worktree (default: this one)."
)
@click.option("--force", is_flag=True, help="Restore over local changes (they are saved to a snapshot ref first).")
@click.option(
    "--with-commits/--without-commits",
    default=None,
    help="When HEAD lacks commits the snapshot was taken on: bring them first (fast-forward, or "
    "cherry-picked onto HEAD), or restore the work alone. Neither: refused (exit 3), naming them.",
)
@timeout_option
@json_option
@pass_app
def restore(
    app: AppContext,
    snapshot: str,
    into: str | None,
    force: bool,
    with_commits: bool | None,
    timeout: float | None,
    as_json: bool,
) -> int:
    """Put a snapshot's work (staged, unstaged and untracked files) back into a worktree.

    Where HEAD is the commit the snapshot was taken on, files and index become exactly
    the snapshot; where HEAD moved on, its changes are merged onto HEAD (like `git
    stash apply`), and a conflict changes nothing (exit 1). A worktree with local
    changes is refused (exit 3) unless --force. The snapshot itself is kept.

    When HEAD lacks commits the snapshot stands on (after a crash, `recover` rolls
    an open TDD sequence back: its commits are then only under the snapshot), the
    restore is refused (exit 3) and names them; --with-commits brings them first
    (the branch fast-forwards, or they are cherry-picked onto HEAD's own commits).

    \b
    Examples:
      gitxact snapshots restore agent-7/20260130T102822.050885Z
      gitxact snapshots restore agent-7/20260130T102822.050885Z --into ../repo.worktrees/agent-7
      gitxact snapshots restore agent-7/20260130T102822.050885Z --into agent-7 --with-commits
    """
    ws = app.workspace(timeout=timeout)
    doc = ws.snapshots.restore(snapshot, into=into, force=force, with_commits=with_commits)
    show(doc, as_json, lambda: render_restore(doc))
    return 0


@snapshots.command()
@click.argument("names", nargs=-1, metavar="[SNAPSHOT]...")
@agent_option
@older_than_option
@click.option("--all", "everything", is_flag=True, help="Every snapshot that is not protected.")
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped.")
@timeout_option
@json_option
@pass_app
def drop(
    app: AppContext,
    names: tuple[str, ...],
    agent: str | None,
    older_than: str | None,
    everything: bool,
    dry_run: bool,
    timeout: float | None,
    as_json: bool,
) -> int:
    """Delete snapshot refs: the named ones, or those --agent/--older-than/--all select.

    Only refs under refs/gitxact/snapshots/ are deleted, each by compare-and-swap.
    Snapshots of a live lease or transaction are never dropped: named, the drop is
    refused (exit 3, nothing dropped); selected, they are kept and listed. Exit 1 if
    a snapshot changed while it was being dropped.

    \b
    Examples:
      gitxact snapshots drop agent-7/20260130T102822.050885Z
      gitxact snapshots drop --agent agent-7 --older-than 7d --dry-run
    """
    ws = app.workspace(timeout=timeout)
    doc = ws.snapshots.drop(*names, agent=agent, older_than=older_than, everything=everything, dry_run=dry_run)
    show(doc, as_json, lambda: render_drop(doc))
    return 1 if doc.errors else 0


@snapshots.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped.")
@timeout_option
@json_option
@pass_app
def expire(app: AppContext, dry_run: bool, timeout: float | None, as_json: bool) -> int:
    """Drop the snapshots older than git config gitxact.snapshotExpiry (what `gitxact gc` does first).

    Unset (the default) or `never`: nothing expires. Protected snapshots are kept.

    \b
    Examples:
      git config gitxact.snapshotExpiry 14d && gitxact snapshots expire --dry-run
    """
    doc = app.workspace(timeout=timeout).snapshots.expire(dry_run=dry_run)
    if doc.expiry is None and not as_json:
        click.echo("no expiry configured (git config gitxact.snapshotExpiry): every snapshot is kept")
        return 0
    show(doc, as_json, lambda: render_drop(doc))
    return 1 if doc.errors else 0


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def render_list(doc: SnapshotListDoc) -> str:
    from gitxact.util.durations import format_duration

    if not doc.snapshots:
        return "no snapshots"
    rows = [["SNAPSHOT", "KIND", "AGE", "HEAD", "FROM", "PROTECTED"]]
    for item in doc.snapshots:
        rows.append(
            [
                item.name,
                item.kind,
                format_duration(item.age),
                (item.head or "unborn")[:12],
                item.source or "",
                style(item.protected, fg="yellow") if item.protected else "",
            ]
        )
    return table(rows, indent="")


def render_show(doc: SnapshotShowDoc) -> str:
    from gitxact.snapshots.usage import human_size
    from gitxact.util.durations import format_duration

    info = doc.snapshot
    lines = [
        f"snapshot   {info.name}",
        f"ref        {info.ref}",
        f"kind       {info.kind}" + (f" (agent {info.agent})" if info.agent else f" ({info.namespace})"),
        f"taken      {_when(info.created)} ({format_duration(info.age)} ago)"
        + (f" in {info.source}" if info.source else ""),
        f"head       {info.head or '(unborn branch)'}",
        f"size       {human_size(doc.size)} beyond its head",
        f"protected  {info.protected or 'no'}",
        f"files      {len(doc.files)} (as `git status --short` showed them)",
    ]
    lines += [f"  {item.index}{item.worktree} {item.path}" for item in doc.files]
    base = info.head or "$(git hash-object -t tree /dev/null)"
    lines.append(f"changes:   git diff {base[:12]} {info.ref}")
    return "\n".join(lines)


def render_restore(doc: RestoreDoc) -> str:
    how = (
        "exact: HEAD is where it was taken"
        if doc.method == "exact"
        else f"applied onto HEAD {(doc.head or 'unborn')[:12]}; it was taken on {(doc.snapshot_head or 'unborn')[:12]}"
    )
    lines = [f"restored {doc.snapshot} into {doc.into} ({doc.files} file(s); {how})"]
    if doc.commits in ("fast-forward", "cherry-pick"):
        moved = f"{(doc.moved_from or 'unborn')[:12]} -> {(doc.head or 'unborn')[:12]}" if doc.moved_from else "no move"
        lines.append(f"  brought {len(doc.missing)} commit(s) it was taken on first ({doc.commits}, HEAD {moved}):")
        for item in doc.missing:
            became = "already there" if item.brought_as is None else item.brought_as[:12]
            arrow = "" if item.brought_as == item.commit else f" -> {became}"
            lines.append(f"    {item.commit[:12]} {item.subject}{arrow}")
    elif doc.commits == "left-out":
        left = f"  left out {len(doc.missing)} commit(s) it was taken on (--without-commits):"
        lines.append(style(left, fg="yellow"))
        lines += [f"    {item.commit[:12]} {item.subject}" for item in doc.missing]
        lines.append(f"  they are kept in {', '.join(doc.kept_in)}")
    if doc.saved_ref:
        lines.append(f"  the worktree's own uncommitted work was saved first to {doc.saved_ref}")
    if not doc.index_restored:
        lines.append(style("  the staged changes conflict with HEAD: files are back, nothing is staged", fg="yellow"))
    lines.append(f"  the snapshot is kept: `gitxact snapshots drop {doc.snapshot}` once you no longer need it")
    return "\n".join(lines)


def render_drop(doc: DropDoc) -> str:
    from gitxact.snapshots.expiry import describe

    verb = "would drop" if doc.dry_run else "dropped"
    lines = [f"{verb} {item.name}" for item in doc.dropped]
    lines += [f"kept {item.name}: {item.why}" for item in doc.kept]
    lines.append(describe(doc))
    return "\n".join(lines)
