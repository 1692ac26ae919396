"""Human renderings of the JSON documents (tables for people, colors only on a TTY)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gitxact.util.console import style, table

if TYPE_CHECKING:
    from gitxact.backends.overview import DatabaseDoc, DbPartyDoc
    from gitxact.health.status import PartyDoc, RepositoryDoc, StatusDoc
    from gitxact.project.results import TrustDoc
    from gitxact.tx.results import TxInfo
    from gitxact.worktrees.kept import KeptBranchesDoc, PruneBranchesDoc
    from gitxact.worktrees.lease_info import LeaseInfo, LeaseListDoc
    from gitxact.worktrees.results import AcquireDoc, EndDoc, FleetDoc, ReapDoc, ReleaseDoc


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f}ms"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _who(party: PartyDoc) -> str:
    text = f"pid {party.pid}"
    if party.agent:
        text += f" ({party.agent})"
    return text


def _where(repo: RepositoryDoc) -> str:
    """The worktree, the branch checked out there, and git's id of a linked worktree."""
    if repo.worktree is None:
        return "(none: bare or inside .git)"
    text = f"{repo.worktree}  on {repo.branch}" if repo.branch else f"{repo.worktree}  (detached HEAD)"
    return text if repo.worktree_id == "main" else f"{text}  (worktree id {repo.worktree_id})"


def render_status(doc: StatusDoc, *, dirty: bool = True) -> str:
    """*dirty*: whether dirty/clean was looked at (else the column is left out, not shown as "?")."""
    repo = doc.repository
    lines = [
        f"{style('repository', bold=True)}  {repo.common_dir}",
        f"{style('worktree', bold=True)}    {_where(repo)}",
    ]
    if not repo.initialized:
        lines.append(style("gitxact is not initialized here yet (gitxact init); showing what exists", fg="yellow"))
    lines.append(style("locks", bold=True))
    rows: list[list[str]] = []
    for lock in doc.locks:
        for party in lock.holders:
            rows.append(
                [
                    lock.name,
                    style("held", fg="green"),
                    party.mode,
                    _who(party),
                    duration(party.age),
                    party.command or "",
                ]
            )
        for party in lock.waiters:
            rows.append(
                [
                    lock.name,
                    style("waiting", fg="yellow"),
                    party.mode,
                    _who(party),
                    duration(party.age),
                    party.command or "",
                ]
            )
    lines.append(table(rows) if rows else "  (none held)")
    if doc.state_files:
        lines.append(style("state files", bold=True))
        state_rows = []
        for item in doc.state_files:
            verdict = style("ok", fg="green") if item.ok else style(f"BAD: {item.problem}", fg="red")
            backup = "backup ok" if item.backup_ok else "no backup"
            state_rows.append([item.name, verdict, f"generation {item.generation}", backup])
        lines.append(table(state_rows))
    if doc.leases:
        lines.append(style("leases", bold=True))
        lease_rows = []
        for lease in doc.leases:
            alive = {True: "alive", False: "dead", None: "unknown"}[lease.owner.alive]
            state = (
                "folder missing"
                if lease.folder_missing
                else lease.phase
                if lease.phase != "active"
                else (
                    "live, heartbeat stale"
                    if lease.warning
                    else "live"
                    if lease.live
                    else "expired"
                    if lease.expired
                    else "owner gone"
                )
            )
            work = [{True: style("dirty", fg="yellow"), False: "clean", None: "?"}[lease.dirty]] if dirty else []
            lease_rows.append(
                [
                    lease.agent,
                    lease.branch,
                    f"pid {lease.owner.pid} {alive}",
                    style(state, fg="green" if state == "live" else "yellow"),
                    *work,
                    f"heartbeat {_age(lease.heartbeat_age)}",
                    f"disk {disk_cell(lease)}",
                    *([f"ports {_ports(lease.ports)}"] if any(item.ports for item in doc.leases) else []),
                    *([f"conflicts {conflicts_cell(lease)}"] if lease.conflicts is not None else []),
                    lease.path,
                ]
            )
        lines.append(table(lease_rows))
        lines.append(f"  {disk_total_line(doc.leases)}")
        lines.extend(_lease_warnings(doc.leases))
        if not dirty:
            lines.append("  (dirty or clean not looked at: gitxact status --dirty)")
    lines.append(style("transactions", bold=True))
    lines.append(render_transactions(doc.transactions) or "  (none open)")
    if doc.last_recover is not None:
        last = doc.last_recover
        verdict = style("ok", fg="green") if last.ok else style(f"{len(last.problems)} problem(s)", fg="red")
        lines.append(
            f"{style('last recover', bold=True)}  {duration(max(0.0, time.time() - last.at))} ago: "
            f"{last.actions} action(s), {verdict}"
        )
    if doc.snapshots is not None and doc.snapshots.count:
        from gitxact.snapshots.usage import describe

        lines.append(f"{style('snapshots', bold=True)}   {describe(doc.snapshots)}")
    if doc.database is not None:
        lines.extend(render_database(doc.database))
    overall = doc.lock_times.get("all", {})
    if overall.get("count"):
        lines.append(style("lock times", bold=True))
        lines.append(
            f"  {overall['count']} recent holds: wait p50 {duration(overall['wait_p50'])}, "
            f"p99 {duration(overall['wait_p99'])}, max {duration(overall['wait_max'])}; "
            f"hold max {duration(overall['hold_max'])}"
        )
    return "\n".join(lines)


def render_database(db: DatabaseDoc) -> list[str]:
    """Status's database part: the server, the fleet's named locks, the agent registry in short."""
    if db["reachable"]:
        reach = style("reachable", fg="green") + (f", schema {db['schema_version']}" if db["schema_version"] else "")
    else:
        reach = style("UNREACHABLE", fg="red")
    where = db["backend"] + (f" (namespace {db['namespace']})" if db["namespace"] else "")
    lines = [f"{style('database', bold=True)}    {where}: {reach}"]
    if db["error"]:
        lines.append(style(f"  {db['error']}", fg="red" if not db["reachable"] else "yellow"))
    if not db["reachable"]:
        return lines
    rows: list[list[str]] = []
    for lock in db["locks"]:
        for party in lock["holders"] + lock["waiters"]:
            held = party["state"] == "holding"
            rows.append(
                [
                    lock["name"],
                    style("held", fg="green") if held else style("waiting", fg="yellow"),
                    party["mode"],
                    _db_who(party),
                    duration(party["age"]),
                    party["command"] or "",
                ]
            )
    lines.append(style("  named locks (every host)", bold=True))
    lines.append(table(rows, indent="    ") if rows else "    (none held)")
    claims = db["claims"]
    if claims is not None:
        per_host = ", ".join(
            f"{h['host']} {h['claims']}" + (f" ({h['expired']} expired)" if h["expired"] else "")
            for h in claims["hosts"]
        )
        head = f"  {style('agents', bold=True)} {claims['total']} claimed"
        lines.append(head + (f": {per_host}" if per_host else ""))
        for item in claims["expired"]:
            lines.append(
                style(
                    f"    expired: {item['agent']} (branch {item['branch']}) of pid {item['pid']} on {item['host']}, "
                    f"{duration(item['expired_for'])} ago; `gitxact worktree reap` ends it",
                    fg="yellow",
                )
            )
    return lines


def _db_who(party: DbPartyDoc) -> str:
    text = f"pid {party['pid']} on {party['host'] or '?'}"
    if party["agent"]:
        text += f" ({party['agent']})"
    return text


def _age(seconds: float) -> str:
    return duration(seconds) + " ago"


def render_acquire(doc: AcquireDoc) -> str:
    lines = [
        f"{'existing lease' if doc.existing else 'leased'} {doc.path}",
        f"  agent   {doc.agent}",
        f"  branch  {doc.branch} ({_branch_origin(doc)})",
        f"  owner   pid {doc.owner_pid} on {doc.owner_host}, ttl {doc.ttl:g}s",
    ]
    if doc.ports:
        lines.append(f"  ports   {', '.join(str(port) for port in doc.ports)}")
    if doc.sparse:
        lines.append(f"  sparse  {', '.join(doc.sparse)} (only these folders checked out)")
    if doc.include_linked:
        lines.append(f"  linked  {', '.join(doc.include_linked)} (the main worktree's, shared)")
    if doc.setup_log is not None:
        lines.append(
            f"  setup   {'FAILED, kept (--keep-failed): ' if doc.setup_failed else 'done, '}log {doc.setup_log}"
        )
    if doc.token is not None:
        lines.append(f"  token   {doc.token}")
        lines.append("  (keep the token: release and renew need it; it is not shown again)")
    elif doc.existing:
        lines.append("  token   (not shown again: use the token from the first acquire)")
    if doc.include_skipped:
        lines.append(f"  not copied (a symbolic link on the way): {', '.join(doc.include_skipped)}")
    if doc.replaced is not None:
        lines.append("ended a previous lease first:")
        lines.append(render_end(doc.replaced))
    return "\n".join(lines)


def _branch_origin(doc: AcquireDoc) -> str:
    if doc.existing:
        return "this lease's"
    if doc.reused == "fresh":
        kept = f"; its old commits kept on {doc.kept_branch}" if doc.kept_branch else ""
        done = f" (it was {doc.branch_integrated})" if doc.branch_integrated else ""
        return f"started again from {doc.base}{done}{kept}"
    if doc.branch_ahead is not None:
        return (
            f"left by an earlier lease, {'resumed, ' if doc.reused else ''}"
            f"{doc.branch_ahead} ahead of {doc.base}, {doc.branch_behind} behind"
        )
    return f"new, from {doc.base}" if doc.branch_created else "existing"


def _ports(ports: list[int]) -> str:
    return ",".join(str(port) for port in ports) or "-"


def render_kept_branches(doc: KeptBranchesDoc) -> str:
    from gitxact.worktrees.integration import MERGED, Verdict

    if not doc.branches:
        return "no branch left by a lease"
    rows = [
        [
            b.branch,
            style(Verdict(b.tip, b.rule or MERGED, b.into).describe(), fg="green")
            if b.merged
            else style("unmerged", fg="yellow"),
            b.tip[:12],
            f"checked out at {b.checked_out}" if b.checked_out else "",
        ]
        for b in doc.branches
    ]
    return table(rows)


def render_prune_branches(doc: PruneBranchesDoc) -> str:
    verb = "would delete" if doc.dry_run else "deleted"
    done = [f"{verb} {name}" + (f" ({doc.integrated[name]})" if name in doc.integrated else "") for name in doc.deleted]
    lines = [*done, *(f"kept {n}: {why}" for n, why in doc.kept.items())]
    return "\n".join(lines) or "no branch left by a lease"


def render_fleet(doc: FleetDoc) -> str:
    if not doc.claims:
        return "no agent is leased on any host"
    rows = [
        [
            c.agent,
            c.branch,
            c.host,
            f"pid {c.pid}",
            style("expired", fg="yellow") if c.expired else "live",
            ",".join(map(str, c.ports)),
        ]
        for c in doc.claims
    ]
    return table(rows)


def render_end(doc: EndDoc) -> str:
    who = doc.agent or "(no lease)"
    lines = [f"{doc.action}: {who} {doc.path} ({doc.reason})"]
    if doc.error:
        lines.append(style(f"  FAILED: {doc.error}", fg="red"))
        return "\n".join(lines)
    if doc.stale_lock_removed:
        lines.append(f"  {doc.stale_lock_removed}")
    if doc.snapshot_ref:
        lines.append(f"  uncommitted work saved to {doc.snapshot_ref}")
    if doc.transaction:
        lines.append(f"  {doc.transaction}")
    if doc.folder_left:
        lines.append(style(f"  folder {doc.path} was not empty and was left in place", fg="yellow"))
    if doc.branch and doc.branch_deleted:
        lines.append(f"  branch {doc.branch} deleted ({doc.branch_integrated or 'integrated'})")
    elif doc.branch and doc.branch_kept_reason:
        lines.append(f"  branch {doc.branch} kept: {doc.branch_kept_reason}")
    if doc.claim_left:
        lines.append(style(f"  fleet claim {doc.claim_left}", fg="yellow"))
    return "\n".join(lines)


def render_trust(doc: TrustDoc) -> str:
    if doc.source is None:
        edited = " (the main worktree's own is not committed)" if doc.edited_in_main else ""
        return f"no .gitxact.toml in that commit: nothing to trust{edited}"
    commands = [*(f"  setup     {c}" for c in doc.setup), *(f"  teardown  {c}" for c in doc.teardown)]
    if not commands:
        return f"{doc.source} names no command: it needs no trust"
    verdict = {
        "trusted": "trusted: acquires will run these commands",
        "revoked": "revoked: acquires refuse this file again",
        "unchanged": "already trusted" if doc.trusted else "was not trusted",
    }[doc.action]
    lines = [f"{doc.source} (sha256 {doc.sha256})", *commands, verdict]
    if doc.edited_in_main:
        lines.append("note: the main worktree's .gitxact.toml differs; acquires use the committed one")
    return "\n".join(lines)


def render_release(doc: ReleaseDoc) -> str:
    lines = [render_end(doc)]
    if doc.teardown_error:
        lines.append(style(f"  {doc.teardown_error}", fg="yellow"))
    elif doc.teardown_log:
        lines.append(f"  teardown done (log {doc.teardown_log})")
    return "\n".join(lines)


def render_lease_list(doc: LeaseListDoc, *, dirty: bool = True) -> str:
    """*dirty*: whether dirty/clean was looked at (else no WORK column, and a line saying so)."""
    if not doc.leases:
        return "no leases"
    with_ports = any(item.ports for item in doc.leases)
    with_conflicts = any(item.conflicts is not None for item in doc.leases)
    with_sparse = any(item.sparse for item in doc.leases)
    rows = [
        [
            "AGENT",
            "BRANCH",
            "OWNER",
            "AGE",
            "HEARTBEAT",
            "STATE",
            *(["WORK"] if dirty else []),
            "AHEAD/BEHIND",
            "DISK",
            *(["PORTS"] if with_ports else []),
            *(["CONFLICTS"] if with_conflicts else []),
            *(["SPARSE"] if with_sparse else []),
            "PATH",
        ]
    ]
    for item in doc.leases:
        alive = {True: "alive", False: "DEAD", None: "unknown"}[item.owner.alive]
        if item.folder_missing:
            state = style("folder missing", fg="red")
        elif item.phase != "active":
            state = style(item.phase, fg="yellow")
        elif not item.live:
            state = style("expired" if item.expired else "owner dead", fg="yellow")
        else:
            state = style("live, heartbeat stale", fg="yellow") if item.warning else style("live", fg="green")
        work = [{True: "dirty", False: "clean", None: "?"}[item.dirty]] if dirty else []
        ahead = "?" if item.ahead is None else f"+{item.ahead}/-{item.behind}"
        rows.append(
            [
                item.agent,
                item.branch,
                f"pid {item.owner.pid} {alive}",
                duration(item.age),
                _age(item.heartbeat_age),
                state,
                *work,
                ahead,
                disk_cell(item),
                *([_ports(item.ports)] if with_ports else []),
                *([conflicts_cell(item)] if with_conflicts else []),
                *([",".join(item.sparse) or "-"] if with_sparse else []),
                item.path,
            ]
        )
    listing = "\n".join([table(rows, indent=""), disk_total_line(doc.leases), *_lease_warnings(doc.leases, indent="")])
    return listing if dirty else listing + "\n(dirty or clean not looked at: gitxact worktree list --dirty)"


def disk_cell(item: LeaseInfo) -> str:
    """``1.2 GiB, 5m ago``: the recorded size and how old it is (``?``: never measured)."""
    from gitxact.snapshots.usage import human_size

    if item.disk_bytes is None or item.disk_age is None:
        return "?"
    return f"{human_size(item.disk_bytes)}, {_age(item.disk_age)}"


def disk_total_line(items: list[LeaseInfo]) -> str:
    from gitxact.snapshots.usage import human_size
    from gitxact.worktrees.lease_info import disk_total

    unknown = sum(item.disk_bytes is None for item in items)
    return (
        f"disk: {human_size(disk_total(items))} in {len(items) - unknown} lease(s) as last measured"
        + (f", {unknown} never measured" if unknown else "")
        + " (--sizes measures again)"
    )


def conflicts_cell(item: LeaseInfo) -> str:
    """``main: a.py; agent-2: b.py, c.py``, ``none``, or ``?`` (not looked at, or no live branch)."""
    if item.conflicts is None:
        return "?"
    if not item.conflicts:
        return "none"
    return "; ".join(f"{who}: {', '.join(paths)}" for who, paths in item.conflicts.items())


def _lease_warnings(leases: list[LeaseInfo], *, indent: str = "  ") -> list[str]:
    """A live owner past its TTL: kept, so only said (reap never ends it)."""
    return [f"{indent}{style('warning', fg='yellow')}: {item.agent}: {item.warning}" for item in leases if item.warning]


def render_reap(doc: ReapDoc) -> str:
    lines: list[str] = []
    verb = "would end" if doc.dry_run else "ended"
    if not doc.ended and not doc.claims_ended and not doc.trash_emptied:
        lines.append("nothing to reap")
    for item in doc.ended:
        prefix = f"{verb}: " if doc.dry_run else ""
        lines.append(prefix + render_end(item))
    for claim in doc.claims_ended:
        lines.append(
            f"{verb} claim: {claim.agent} (branch {claim.branch}) of pid {claim.pid} on {claim.host} ({claim.reason})"
        )
    for agent in doc.relocked:
        lines.append(f"locked again: {agent}'s worktree (someone had unlocked it)")
    for name in doc.trash_emptied:
        lines.append(f"emptied from the trash: {name} (files of an ended lease)")
    for agent, why in doc.kept.items():
        lines.append(f"kept {agent}: {why}")
    return "\n".join(lines)


def render_transactions(items: list[TxInfo]) -> str:
    """One line per open transaction, its savepoints and TDD step indented below."""
    lines: list[str] = []
    for tx in items:
        colour = {"open": "green", "busy": "yellow", "abandoned": "red"}.get(tx.state, "white")
        head = f"  {tx.tx_id}" + (f" ({tx.name})" if tx.name else "")
        head += f"  [{tx.worktree_id}]  {style(tx.state, fg=colour)}  {tx.namespace}"
        lines.append(head)
        if tx.step is not None:
            failed = f" failed: {tx.step.failed}" if tx.step.failed else ""
            lines.append(f"      step: {tx.step.op} ({tx.step.phase}) by pid {tx.step.pid}{failed}")
        if tx.state == "abandoned":
            lines.append("      run `gitxact recover`")
        if tx.tdd is not None:
            lines.append(f"      tdd: {tx.tdd.step}, {len(tx.tdd.commits)} commit(s)")
        rows = [
            [sp.name, (sp.head or "unborn")[:12], (sp.branch or "detached").removeprefix("refs/heads/")]
            for sp in tx.savepoints
        ]
        if rows:
            lines.append(table(rows, indent="      savepoint "))
    return "\n".join(lines)
