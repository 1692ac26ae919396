"""What every command shares: the ``-C`` path, the workspace, output helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from gitxact import error_handler
from gitxact.errors import UsageError
from gitxact.locking.tickets import Mode, Party

if TYPE_CHECKING:
    from gitxact.core.plain import JsonDocument
    from gitxact.locking.locks import LockKey
    from gitxact.workspace import Workspace


class AppContext:
    """Created by the root group; commands ask it for a :class:`Workspace`."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.paths = paths
        self._workspace: Workspace | None = None

    def path(self) -> Path | None:
        if not self.paths:
            return None
        # Cumulative, like git -C a -C b; an absolute one needs no current folder (it may be gone).
        current = Path(self.paths[0]) if os.path.isabs(self.paths[0]) else here() / self.paths[0]
        for item in self.paths[1:]:
            current = current / item
        return current

    def workspace(self, *, timeout: float | None = None) -> Workspace:
        from gitxact.workspace import Workspace

        if self._workspace is None:
            self._workspace = Workspace(self.path(), timeout=timeout, observer=StderrWaitObserver())
            logs = self._workspace.state_dir / "logs"
            if logs.is_dir():
                error_handler.log_dir = logs
        return self._workspace


def here() -> Path:
    """The current folder, or a clear error when it was deleted under us."""
    try:
        return Path.cwd()
    except FileNotFoundError:
        raise UsageError(
            "the current folder no longer exists", hint="cd to an existing folder, or pass -C with an absolute path"
        ) from None


pass_app = click.make_pass_decorator(AppContext)


def emit(doc: JsonDocument) -> None:
    """Print one JSON document on stdout (the whole of stdout in ``--json`` mode)."""
    click.echo(doc.to_json())


def json_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")(func)


def dirty_option(func: click.decorators.FC) -> click.decorators.FC:
    """``--dirty/--no-dirty`` of the lease listings (``worktree list``, ``status``).

    Whether a worktree holds uncommitted work takes a ``git status`` in it: one process
    per lease, the only part of a listing that grows with the number of leases (+113 ms at
    100 leases, issue 14). A person reading the table asks for it with ``--dirty``; a
    ``--json`` document keeps it by default, since a program may decide on it and must not
    silently get "unknown". Nothing gitxact decides depends on a listing: release, reap and
    ``snapshots restore`` run their own check, in the worktree, under its lock, at the moment
    they act (a listing's verdict is stale as soon as it is printed).
    """
    return click.option(
        "--dirty/--no-dirty",
        default=None,
        help="Tell dirty worktrees from clean ones (a git status in each; default: only with --json).",
    )(func)


def show(doc: JsonDocument | Callable[[], JsonDocument], as_json: bool, text: Callable[[], str]) -> None:
    """The one way a command prints its result: the JSON document, or *text()* for people.

    *doc* may be a function that builds it, so plain output never imports pydantic.
    """
    if as_json:
        click.echo((doc() if callable(doc) else doc).to_json())
    else:
        click.echo(text())


def lock_timeout_option(flag: str = "--timeout") -> Callable[[click.decorators.FC], click.decorators.FC]:
    """How long to wait for gitxact's locks; ``--lock-timeout`` where ``--timeout`` means something else."""
    return click.option(
        flag,
        flag.lstrip("-").replace("-", "_"),
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="Give up waiting for a lock after SECONDS (exit 75). Default: git config gitxact.lockTimeout (60).",
    )


timeout_option = lock_timeout_option()


class StderrWaitObserver:
    """Tells a person why nothing happens: who holds the lock, then a progress indicator."""

    def __init__(self) -> None:
        self._shown = False
        self._tty = sys.stderr.isatty()

    def waiting(self, key: LockKey, mode: Mode, elapsed: float, holders: list[Party]) -> None:
        if not self._shown:
            self._shown = True
            who = "; ".join(p.describe() for p in holders) if holders else "waiters ahead in the queue"
            click.echo(f"gitxact: waiting for {key.describe()} ({mode}): {who}", err=True)
            return
        if self._tty:
            click.echo(f"\r  still waiting: {elapsed:4.0f}s", nl=False, err=True)
        else:
            click.echo(".", nl=False, err=True)

    def acquired(self, key: LockKey, mode: Mode, waited: float) -> None:
        if self._shown:
            prefix = "\r" if self._tty else ""
            click.echo(f"{prefix}gitxact: got {key.describe()} after {waited:.1f}s", err=True)
            self._shown = False
