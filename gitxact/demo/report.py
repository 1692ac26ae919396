"""The demo's summary for people (``--json`` prints the :class:`DemoSummary` itself)."""

from __future__ import annotations

from gitxact.demo.scenario import DemoSummary
from gitxact.util.console import style, table


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _count(value: int, good: bool) -> str:
    return style(str(value), fg="green" if good else "red", bold=True)


def _provisioning(doc: DemoSummary) -> list[str]:
    if doc.mode == "raw":
        return ["lease setup", "none: raw git runs no setup (.gitxact.toml is gitxact's), each agent scripts its own"]
    trusted = "trusted with `gitxact trust`" if doc.trusted else style("NOT trusted", fg="red")
    return [
        "lease setup",
        f"{_count(doc.setup_ran, doc.setup_ran == doc.agents)} of {doc.agents} leases: each agent read back"
        f" its name and port from what .gitxact.toml's setup wrote ({trusted})",
    ]


def _ports(doc: DemoSummary) -> list[str]:
    if doc.mode == "raw":
        return ["ports", "none allocated: each agent picks its own, and nothing keeps two from the same one"]
    distinct = doc.ports_distinct
    said = style("distinct" if distinct else "NOT distinct", fg="green" if distinct else "red", bold=True)
    listed = ", ".join(str(port) for port in doc.ports) or "none"
    return ["ports", f"{said}: {listed} (one per lease, each listened on by its agent)"]


def render(doc: DemoSummary) -> str:
    gitxact = doc.mode == "gitxact"
    landed = doc.commits_landed
    title = "with gitxact" if gitxact else "with raw git (--raw)"
    killed = f"{doc.killed}"
    if doc.killed:
        if gitxact:
            actions = _plural(len(doc.recover_actions), "action")
            killed += f"; gitxact recover: {'ok' if doc.recovered else 'FAILED'} ({actions})"
        else:
            killed += "; no recover: its worktree and half-done commit stay"
    rows = [
        _provisioning(doc),
        _ports(doc),
        [
            "commits kept on a branch",
            f"{_count(landed, landed == doc.commits_planned)} of {doc.commits_planned} the agents made"
            f" ({doc.agents} agents x (2 TDD + {doc.commits_per_agent} shared)), found by message",
        ],
        ["failed git commands", _count(doc.git_failures, doc.git_failures == 0)],
        [
            "counter updates kept",
            f"{_count(doc.tracker_kept, doc.tracker_kept == doc.tracker_expected)} of {doc.tracker_expected}",
        ],
        [
            "TDD rollbacks",
            f"{doc.tdd_rollbacks}" + (" (a failing green, undone, then redone)" if doc.tdd_rollbacks else ""),
        ],
        [
            "gc while agents work",
            f"{'refused' if doc.gc_refused else 'ran'} ({doc.gc_refused} of {doc.gc_attempts} refused)",
        ],
        ["agents SIGKILLed", killed],
    ]
    rows += [["  recover", action] for action in doc.recover_actions]
    if doc.snapshots:
        more = f" (+{len(doc.snapshots) - 1} more)" if len(doc.snapshots) > 1 else ""
        rows.append(["its unsaved work", f"kept in {doc.snapshots[0]}{more}"])
    steady = sum(row.role == "steady" for row in doc.rows)
    if gitxact:
        rows.append(
            [
                "landed through the queue",
                f"{_count(doc.landed, doc.landed == steady)} of {doc.landed + doc.land_refused} branches"
                + (f"; {doc.land_refused} refused (its check failed: a broken refactor)" if doc.land_refused else ""),
            ]
        )
    else:
        rows.append(["landed through a queue", "no queue: branches stay unlanded, nothing checks what would land"])
    rows += [
        [
            "worktrees left behind",
            _count(doc.worktrees_left, doc.worktrees_left == 0) + (f" (leases {doc.leases_left})" if gitxact else ""),
        ],
        ["git fsck --strict", style("clean", fg="green") if doc.fsck_clean else style("errors", fg="red")],
        ["lost", _count(doc.lost, doc.lost == 0)],
    ]
    agents = [["agent", "role", "port", "commits kept", "failed git", "bumps made", "rollbacks", "land", "end"]]
    agents += [
        [
            row.name,
            row.role,
            "-" if row.port is None else str(row.port),
            f"{row.commits_landed}/{row.commits_planned}",
            str(row.git_failures),
            str(row.bumps),
            str(row.rollbacks),
            row.land,
            row.phase,
        ]
        for row in doc.rows
    ]
    lines = [
        style(f"gitxact demo: {doc.agents} agents at once {title}, {doc.seconds:.1f}s", bold=True),
        table(rows),
        "",
        table(agents),
    ]
    if doc.repository:
        lines += ["", f"kept: {doc.repository} (the repository is project/, its worktrees beside it)"]
    other = (
        "gitxact demo --raw: the same agents with raw git" if gitxact else "gitxact demo: the same agents with gitxact"
    )
    lines += ["", f"see also: {other}"]
    return "\n".join(lines)
