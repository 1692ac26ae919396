"""``gitxact watch``: the live view (locks, leases, recent events, the targets), drawn with rich.

rich is an optional extra (``pip install 'gitxact[watch]'``) and this module is the only
one that imports it, inside the command: no other command pays for it.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import conflicts_option, conflicts_target, pass_app
from gitxact.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Group

    from gitxact.observe.frame import Frame


@click.command()
@click.option("--once", is_flag=True, help="Print one frame on stdout and exit (for logs and tests).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=0.5,
    show_default=True,
    metavar="SECONDS",
    help="Time between two frames.",
)
@click.option("--since", metavar="DURATION", help="Judge the targets on the events of the last DURATION only.")
@conflicts_option
@pass_app
def watch(
    app: AppContext, once: bool, interval: float, since: str | None, conflicts: bool, conflicts_onto: str | None
) -> int:
    """Watch locks (holders, waiters in order), leases, recent events and the targets.

    Refreshed every --interval seconds; q or Ctrl-C quits. The health line says whether
    the targets are met: average lock hold < 100 ms, lock acquisition success >= 99.9%,
    recovery < 5 min (see `gitxact stats`).

    \b
    Examples:
      gitxact watch
      gitxact watch --once > frame.txt
      gitxact watch --conflicts
    """
    try:
        from rich.console import Console
        from rich.live import Live
    except ImportError:
        raise UsageError(
            "gitxact watch needs rich, which is not installed", hint="pip install 'gitxact[watch]'"
        ) from None
    from gitxact.observe.frame import collect_frame
    from gitxact.util.durations import parse_duration

    window = parse_duration(since, "--since") if since is not None else None
    repo = app.workspace()
    onto = conflicts_target(app, conflicts, conflicts_onto)
    merges = None
    if onto is not None:
        from gitxact.land.foresight import MergeTrees

        merges = MergeTrees(repo)  # kept across frames: a pair of tips is merged once

    def frame() -> Group:
        since_t = None if window is None else time.time() - window
        return render(collect_frame(repo, since=since_t, conflicts_onto=onto, merges=merges))

    if once:
        console = Console(width=_width(), highlight=False, no_color=bool(os.environ.get("NO_COLOR")))
        with console.capture() as captured:
            console.print(frame())
        text = captured.get()
        click.echo("\n".join(line.rstrip() for line in text.splitlines()))  # rich pads tables to their width
        return 0
    console = Console(highlight=False)
    try:
        with _keys() as pressed, Live(frame(), console=console, auto_refresh=False, screen=False) as live:
            while not pressed(interval):
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        pass
    return 0


def render(frame: Frame) -> Group:
    """The frame as rich renderables: title, health line, then one table per section."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from gitxact.cli.render import conflicts_cell, duration
    from gitxact.observe.frame import describe_event

    status = frame.status
    title = Text.assemble(
        ("gitxact watch", "bold"),
        f"  {status.repository.common_dir}  {time.strftime('%H:%M:%S', time.localtime(frame.at))}  (q quits)",
    )
    held = sum(len(lock.holders) for lock in status.locks)
    waiting = sum(len(lock.waiters) for lock in status.locks)
    stale = sum(1 for lease in status.leases if lease.expired or lease.owner.alive is False)
    summary = Text(
        f"{held} lock(s) held, {waiting} waiting; {len(status.leases)} lease(s), {stale} stale; "
        f"{len(status.transactions)} open transaction(s)"
    )
    health = Text("health", style="bold")
    for target in frame.stats.targets:
        mark, color = {True: ("met", "green"), False: ("NOT MET", "red"), None: ("no data", "yellow")}[target.met]
        health.append("\n  ")
        health.append(f"{mark:<7}", style=color)
        health.append(f"  {target.name} {target.goal}: {target.shown}")

    locks = Table("lock", "state", "mode", "who", "for", "command", title="locks", box=box.SIMPLE, title_justify="left")
    for lock in status.locks:
        for party in lock.holders:
            locks.add_row(
                lock.name,
                Text("held", "green"),
                party.mode,
                _who(party.pid, party.agent),
                duration(party.age),
                party.command or "",
            )
        for place, party in enumerate(lock.waiters, 1):
            locks.add_row(
                lock.name,
                Text(f"waiting #{place}", "yellow"),
                party.mode,
                _who(party.pid, party.agent),
                duration(party.age),
                party.command or "",
            )
    if not locks.row_count:
        locks.add_row("(none held)", "", "", "", "", "")

    with_conflicts = any(lease.conflicts is not None for lease in status.leases)
    leases = Table(
        "agent",
        "branch",
        "owner",
        "heartbeat",
        "work",
        "transaction",
        *(["conflicts"] if with_conflicts else []),
        title="leases",
        box=box.SIMPLE,
        title_justify="left",
    )
    for lease in status.leases:
        alive = {True: Text("alive", "green"), False: Text("dead", "red"), None: Text("unknown", "yellow")}[
            lease.owner.alive
        ]
        owner = Text.assemble(f"pid {lease.owner.pid} ", alive)
        stale = lease.expired or lease.owner.alive is False
        # A live owner past its TTL is kept (only a warning, yellow); red is for what reap ends.
        color = "" if not stale else "yellow" if lease.live else "red"
        beat = Text(duration(lease.heartbeat_age) + " ago" + (" (stale)" if stale else ""), color)
        work = {True: Text("dirty", "yellow"), False: Text("clean"), None: Text("?")}[lease.dirty]
        tx = frame.transaction_of(lease)
        doing = "-" if tx is None else f"{tx.tx_id} {'TDD ' + tx.tdd.step if tx.tdd else tx.state}"
        cells: list[str | Text] = [lease.agent, lease.branch, owner, beat, work, doing]
        if with_conflicts:
            cells.append(Text(conflicts_cell(lease), "" if not lease.conflicts else "yellow"))
        leases.add_row(*cells)
    if not leases.row_count:
        leases.add_row("(no leases)", "", "", "", "", "", *([""] if with_conflicts else []))

    events = Table("time", "event", "agent", "what", title="recent events", box=box.SIMPLE, title_justify="left")
    for event in reversed(frame.recent):
        at = float(event.get("t", 0.0))
        events.add_row(
            time.strftime("%H:%M:%S", time.localtime(at)),
            str(event.get("ev")),
            str(event.get("agent") or "-"),
            describe_event(event),
        )
    if not events.row_count:
        events.add_row("", "(none recorded)", "", "")
    return Group(title, summary, health, locks, leases, events)


def _who(pid: int, agent: str | None) -> str:
    return f"pid {pid}" + (f" ({agent})" if agent else "")


def _width() -> int:
    """Frames for logs are 120 columns unless COLUMNS says otherwise (rich's default, 80, wraps the tables)."""
    with contextlib.suppress(ValueError):
        return max(40, int(os.environ.get("COLUMNS", "")))
    return 120


@contextlib.contextmanager
def _keys() -> Iterator[Callable[[float], bool]]:
    """``pressed(timeout)``: wait up to *timeout* seconds for a key; ``True`` once q was pressed.

    On a terminal, stdin is put in cbreak mode (keys arrive unbuffered, without echo)
    and put back as it was on the way out; elsewhere there are no keys, only Ctrl-C.
    """
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():

        def nothing(timeout: float) -> bool:
            time.sleep(timeout)
            return False

        yield nothing
        return
    import termios
    import tty

    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def pressed(timeout: float) -> bool:
        ready, _, _ = select.select([fd], [], [], timeout)
        return bool(ready) and os.read(fd, 32).lower().startswith(b"q")

    try:
        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
