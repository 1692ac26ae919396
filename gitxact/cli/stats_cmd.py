"""``gitxact stats``: lock times, success rate, per-agent counts, recoveries, the targets."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import json_option, pass_app, show

if TYPE_CHECKING:
    from gitxact.observe.stats import Figures, StatsDoc


@click.command()
@click.option("--since", metavar="DURATION", help="Only events of the last DURATION (30s, 15m, 12h, 7d).")
@json_option
@click.option("--openmetrics", is_flag=True, help="Print the figures in the OpenMetrics text format.")
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write the OpenMetrics text to PATH by rename (node-exporter's textfile collector).",
)
@pass_app
def stats(app: AppContext, since: str | None, as_json: bool, openmetrics: bool, textfile: Path | None) -> int:
    """Lock wait/hold times per lock, acquisition success, per-agent counts, recoveries.

    From the event record (<git-common-dir>/gitxact/events/), with the targets: average
    lock hold < 100 ms, lock acquisition success >= 99.9%, recovery < 5 min. Exit 0
    whatever the targets say (a monitor reads them from --json or the metrics).

    \b
    Examples:
      gitxact stats
      gitxact stats --since 1h --json | jq '.targets'
      gitxact stats --textfile /var/lib/node_exporter/textfile/gitxact.prom
    """
    from gitxact.observe.stats import collect
    from gitxact.util.durations import parse_duration

    start = time.time() - parse_duration(since, "--since") if since is not None else None
    doc = collect(app.workspace().locks.events, start)
    if textfile is not None or openmetrics:
        from gitxact.observe.openmetrics import render, write_textfile

        text = render(doc)
        if textfile is not None:
            write_textfile(textfile, text)
        if openmetrics:
            click.echo(text, nl=False)
            return 0
        if not as_json:
            return 0
    show(doc, as_json, lambda: render_stats(doc))
    return 0


def render_stats(doc: StatsDoc) -> str:
    from gitxact.cli.render import duration
    from gitxact.util.console import style, table

    window = (
        "the whole record" if doc.since is None else f"since {time.strftime('%H:%M:%S', time.localtime(doc.since))}"
    )
    lines = [f"{style('gitxact stats', bold=True)}  {doc.events} event(s), {window}"]
    lines.append(style("targets", bold=True))
    lines += [f"  {_verdict(t.met)}  {t.name} {t.goal}: {t.shown}" for t in doc.targets]
    lines.append(style("locks", bold=True) + "  (seconds: p50 / p95 / p99 / max / mean)")
    if doc.locks:
        rows = [["lock", "granted", "timeouts", "wait", "hold"]]
        for name, figures in [*doc.locks.items(), ("(all)", doc.all_locks)]:
            rows.append([name, str(figures.granted), str(figures.timeouts), _five(figures.wait), _five(figures.hold)])
        lines.append(table(rows))
    else:
        lines.append("  (no acquisitions recorded)")
    rate = "-" if doc.success_rate is None else f"{doc.success_rate * 100:.2f}%"
    refused = ", ".join(f"{by} {n}" for by, n in doc.refusals.items()) or "none"
    lines.append(f"  acquisition success {rate}; refusals: {refused}")
    if doc.agents:
        lines.append(style("agents", bold=True))
        rows = [["agent", "locks", "timeouts", "gx", "commits", "tx", "rollbacks", "landed", "land refused"]]
        for agent, c in doc.agents.items():
            counts = [c.acquisitions, c.timeouts, c.gx_commands, c.commits, c.transactions, c.rollbacks]
            rows.append([agent, *map(str, counts), str(c.lands), str(c.lands_refused)])
        lines.append(table(rows))
    q = doc.queue
    if q.landed or q.not_landed:
        per = f", {q.checks_per_landed:.2f} checked build(s) per landed" if q.checks_per_landed is not None else ""
        why = ", ".join(f"{k} {v}" for k, v in q.refusals.items())
        lines.append(
            f"{style('landing queue', bold=True)}  {q.landed} landed, {q.not_landed} not"
            + (f" ({why})" if why else "")
            + f"; waited p50 {duration(q.waited.p50)}, p99 {duration(q.waited.p99)}{per}"
        )
    r = doc.recoveries
    slowest = f", slowest {duration(r.seconds.max)}" if r.count else ""
    lines.append(f"{style('recoveries', bold=True)}  {r.count} recover run(s){slowest}, {r.reaps} lease(s) reaped")
    return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    from gitxact.util.console import style

    if met is None:
        return style("no data", fg="yellow")
    return style("met    ", fg="green") if met else style("NOT MET", fg="red")


def _five(figures: Figures) -> str:
    values = (figures.p50, figures.p95, figures.p99, figures.max, figures.mean)
    return " / ".join(f"{v:.4f}" for v in values)
