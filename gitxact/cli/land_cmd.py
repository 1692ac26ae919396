"""``gitxact land``: calls :func:`gitxact.land.queue.land` (``ws.land``) and renders its outcome."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app

if TYPE_CHECKING:
    from gitxact.land.foresight import DryRunDoc


class _Quiet:
    """The queue shows its own progress (position, who is served); the lock's notice would repeat it."""

    def waiting(self, *_args: object) -> None:
        return None

    def acquired(self, *_args: object) -> None:
        return None


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


@click.command()
@click.argument("branch", required=False)
@click.option("--onto", "onto", metavar="TARGET", help="The branch to land onto (of --remote, if given).")
@click.option("--remote", metavar="NAME", help="Land onto TARGET of this remote (a name, path or URL git can push to).")
@click.option(
    "--check",
    metavar="CMD",
    help="Run CMD in the candidate (by /bin/sh -c if it has shell syntax); it must pass for anything to land.",
)
@click.option("--shell", is_flag=True, help="Run --check with /bin/sh -c even if it is plain words.")
@click.option(
    "--check-timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Stop the check after SECONDS (a timeout is a failure). Default: gitxact.checkTimeout (600); 0: none.",
)
@click.option("--strategy", type=click.Choice(["rebase", "merge"]), default="rebase", show_default=True)
@click.option(
    "--batch",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Check up to N queued requests together; a failing batch is bisected.",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    metavar="N",
    help="Build the next N candidates, each on the ones before it, and check them at once; they land in"
    " queue order. Default: gitxact.landParallel (1).",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Build and check again at most N times when TARGET moves outside the queue.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up waiting for your turn after SECONDS (exit 75). Default: gitxact.lockTimeout (60).",
)
@click.option("--status", "show_status", is_flag=True, help="Show the landing queues instead of landing.")
@click.option(
    "--dry-run", is_flag=True, help="Say whether it would land now (conflicts, place in the queue); change nothing."
)
@json_option
@pass_app
def land(
    app: AppContext,
    branch: str | None,
    onto: str | None,
    remote: str | None,
    check: str | None,
    shell: bool,
    check_timeout: float | None,
    strategy: str,
    batch: int,
    parallel: int | None,
    retries: int,
    timeout: float | None,
    show_status: bool,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Land BRANCH (default: your leased branch, else the one checked out) onto TARGET, in turn.

    Requests for one target are served first come, first served across processes (with
    the PostgreSQL backend, across every host's clones of a remote target). Each
    is built in a private temporary worktree (TARGET's tip, then BRANCH rebased or merged
    onto it), checked there with --check, and TARGET moves only by compare-and-swap; if
    it moved outside the queue meanwhile, the candidate is built and checked again. A
    conflict or a failing check refuses the request (exit 3, TARGET unchanged); your
    worktree is never touched. A TARGET leased to another agent is refused before it is
    queued (exit 3, leased_by_other). A kill at any step is finished by `gitxact recover`.

    \b
    Examples:
      gitxact land --onto main --check "pytest -q"
      gitxact land gitxact/agent-3 --onto main --strategy merge --json
      gitxact land --onto main --remote origin --check "make test" --batch 4
      gitxact land --onto main --check "make test" --parallel 4
      gitxact land --onto main --dry-run
      gitxact land --status
    """
    ws = app.workspace()
    if show_status:
        from gitxact.land.queue import status

        queues = status(ws)
        if as_json:
            emit(queues)
            return 0
        if not queues.queues:
            click.echo("no landing requests")
        for queue in queues.queues:
            where = queue.target + (f" of {queue.remote}" if queue.remote else "")
            step = f" ({queue.step}, {queue.lander})" if queue.step else ""
            click.echo(f"{where}: {len(queue.serving)} landing{step}, {len(queue.waiting)} waiting")
            for item in queue.serving + queue.waiting:
                clash = f"; conflicts with {queue.target} in: {', '.join(item.conflicts)}" if item.conflicts else ""
                click.echo(f"  {item.state:8} {item.branch} {item.tip[:12]} (pid {item.pid}, {item.age:.0f}s){clash}")
            for item in queue.recent:
                click.echo(f"  {item.state:8} {item.branch} {item.tip[:12]}: {item.reason}")
        return 0
    if onto is None:
        raise click.UsageError("--onto TARGET is required (or --status)")
    if dry_run:
        return _dry_run(ws.would_land(branch, onto=onto, remote=remote), as_json)
    from gitxact.land.results import LandFailedError, LandRefusedError
    from gitxact.tx import checks

    ws.locks.observer = _Quiet()
    try:
        doc = ws.land(
            branch,
            onto=onto,
            remote=remote,
            check=check,
            shell=shell,
            check_timeout=check_timeout,
            strategy="merge" if strategy == "merge" else "rebase",
            batch=batch,
            parallel=parallel,
            retries=retries,
            timeout=timeout,
            progress=_Progress(onto),
            echo=checks.stderr_echo,
        )
    except (LandRefusedError, LandFailedError) as exc:
        if as_json:
            emit(exc.doc)
        raise  # the message names the conflicting paths or the check's log, once
    if as_json:
        emit(doc)
        return 0
    if doc.already:
        click.echo(f"{doc.branch} is already on {doc.target} ({(doc.landed_tip or '')[:12]})")
    else:
        where = doc.target + (f" of {doc.remote}" if doc.remote else "")
        together = f", checked with {len(doc.batch) - 1} other request(s)" if len(doc.batch) > 1 else ""
        click.echo(
            f"landed {doc.branch} onto {where}: {len(doc.commits)} commit(s), now at {(doc.landed_tip or '')[:12]} "
            f"(waited {doc.waited:.1f}s, attempt {doc.attempts}{together})"
        )
    if doc.warning:
        click.echo(f"gitxact: warning: {doc.warning}", err=True)
    return 0


def _dry_run(doc: DryRunDoc, as_json: bool) -> int:
    """Exit as ``land`` would: 0 when it would land (or is already there), 3 when it would be refused."""
    if as_json:
        emit(doc)
    elif doc.would_land:
        click.echo(f"{doc.branch} would land: {doc.reason}")
    else:
        click.echo(f"{doc.branch} would be refused: {doc.reason}")
    return 0 if doc.would_land else 3


class _Progress:
    """Where the request stands: on a terminal one line redrawn in place, steps and all; in a
    log a line each time its place in the queue changes while it waits (the steps of its
    own landing come and go faster than the queue is looked at, so a log would show some
    and not others; the outcome line says how it ended)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, view: object) -> None:
        from gitxact.land.queue import QueueView

        if not isinstance(view, QueueView):  # pragma: no cover - the queue only sends these
            return
        if not self.tty and view.position == 0:
            return
        serving = ", ".join(view.serving) or "nobody"
        step = f" ({view.step})" if view.step and self.tty else ""
        if view.position == 0:
            line = f"landing now onto {self.target}{step}"
        else:
            line = f"{_ordinal(view.position)} in the queue for {self.target}; landing now: {serving}{step}"
        if line == self.last:  # a view can change in what the line leaves out (how many wait)
            return
        self.last = line
        if self.tty:
            click.echo(f"\r\033[Kgitxact: {line}", nl=False, err=True)
        else:
            click.echo(f"gitxact: {line}", err=True)
