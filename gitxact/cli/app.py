"""What every command shares and what does not need click: the ``-C`` path, the workspace,
the wait notices. The click commands (:mod:`gitxact.cli.context`'s ``pass_app``) and
:mod:`gitxact.cli.fast`, which runs the loop commands without importing click, both use it."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact import error_handler
from gitxact.errors import UsageError

if TYPE_CHECKING:
    from gitxact.locking.locks import LockKey
    from gitxact.locking.tickets import Mode, Party
    from gitxact.workspace import Workspace


class AppContext:
    """Created by the root group (or the fast path); commands ask it for a :class:`Workspace`."""

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


def say(text: str, *, end: str = "\n") -> None:
    """A line for the person at the terminal, on stderr (``click.echo(err=True)`` without click)."""
    sys.stderr.write(text + end)
    sys.stderr.flush()


class StderrWaitObserver:
    """Tells a person why nothing happens: who holds the lock, then a progress indicator."""

    def __init__(self) -> None:
        self._shown = False
        self._tty = sys.stderr.isatty()

    def waiting(self, key: LockKey, mode: Mode, elapsed: float, holders: list[Party]) -> None:
        if not self._shown:
            self._shown = True
            who = "; ".join(p.describe() for p in holders) if holders else "waiters ahead in the queue"
            say(f"gitxact: waiting for {key.describe()} ({mode}): {who}")
            return
        if self._tty:
            say(f"\r  still waiting: {elapsed:4.0f}s", end="")
        else:
            say(".", end="")

    def acquired(self, key: LockKey, mode: Mode, waited: float) -> None:
        if self._shown:
            prefix = "\r" if self._tty else ""
            say(f"{prefix}gitxact: got {key.describe()} after {waited:.1f}s")
            self._shown = False
