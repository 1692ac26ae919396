"""A lease's setup and teardown commands (``.gitxact.toml``), the variables they see, and
which file ``gitxact trust`` trusts (the one an acquire would run).

Each command runs by ``sh -c`` in the lease's worktree, in order, with the lease's
variables (:func:`lease_env`: agent, branch, worktree, ports) in its environment, no
stdin, and its output appended to one log under ``<common-dir>/gitxact/logs/``, whose
path the acquire (or release) names. The first command that fails stops the rest.

Setup runs after the checkout, outside the repository lock (it may take minutes), while
the acquire still holds the new worktree's lock and the record still says
``provisioning``: a reap sees an acquire at work, and a crash in the middle leaves a
record that reap undoes. The commands are handed that lock (``GITXACT_LOCKS``), so a
``gx`` or ``gitxact`` they run in the worktree does not wait for its own acquire.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shlex
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import CommandNotRunnableError
from gitxact.git import run as git
from gitxact.project import config as project_config
from gitxact.project import trust
from gitxact.util import process
from gitxact.util.startup import AGENT_ENV
from gitxact.worktrees import branches

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease
    from gitxact.project.results import TrustDoc

#: Logs of each kind (setup, teardown) kept; older ones are deleted as new ones start.
LOG_KEEP = 50


def lease_env(lease: Lease) -> dict[str, str]:
    """The variables a lease's commands (and its agent's shell) see; the ports only when it has some."""
    env = {AGENT_ENV: lease.agent, "GITXACT_BRANCH": lease.branch, "GITXACT_WORKTREE": lease.path}
    if lease.ports:
        env["GITXACT_PORT"] = str(lease.ports[0])
        env["GITXACT_PORTS"] = ",".join(str(port) for port in lease.ports)
    return env


def export_lines(env: dict[str, str]) -> str:
    """*env* as ``export NAME=value`` lines a POSIX shell can ``eval``."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


@dataclass(frozen=True)
class CommandsRun:
    """How a list of commands ended: all passed (``failed`` is ``None``) or which one did not."""

    log: Path
    failed: str | None = None
    status: int | None = None
    #: The failed command's last line of output, to say why without opening the log.
    said: str = ""

    def describe(self, kind: str) -> str:
        if self.failed is None:
            return f"{kind} passed (log {self.log})"
        said = f": {self.said}" if self.said else ""
        return f"{kind} command `{self.failed}` failed with exit {self.status}{said} (log {self.log})"


def run_commands(repo: Repo, lease: Lease, commands: Sequence[str], kind: str) -> CommandsRun:
    """Run *commands* for *lease* (see the module docstring); *kind* names the log."""
    log_dir = repo.log_dir()
    _prune(log_dir, kind)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    log = log_dir / f"{kind}-{lease.agent}-{stamp}-{secrets.token_hex(3)}.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    # A git the commands run must find the lease's worktree from its cwd, not a GIT_DIR
    # inherited from a hook around the acquire.
    env = git.child_env({**lease_env(lease), **repo.locks.child_env()})
    # Tied to this process (killed with it) only where that is safe: no other thread runs
    # while the child is forked (see gitxact.util.tie).
    tied = threading.active_count() == 1
    try:
        for command in commands:
            os.write(fd, f"$ {command}\n".encode())
            try:
                status = process.run_logged(["sh", "-c", command], env=env, cwd=Path(lease.path), log_fd=fd, tied=tied)
            except CommandNotRunnableError as exc:
                status = exc.exit_code
            os.write(fd, f"# exit {status}\n".encode())
            if status != 0:
                return CommandsRun(log, command, status, _last_line(log))
    finally:
        os.close(fd)
    return CommandsRun(log)


def _last_line(log: Path) -> str:
    """The last line the failed command printed (the log ends with its own ``$``/``#`` lines)."""
    try:
        lines = log.read_bytes()[-4096:].decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    said = [line.strip() for line in lines[:-1] if line.strip()]  # the last is "# exit N"
    return said[-1][:200] if said and not said[-1].startswith("$ ") else ""


def _prune(log_dir: Path, kind: str) -> None:
    """Keep the newest of *kind*'s logs (by time: names start with the agent's)."""

    def written(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:  # pruned meanwhile by another acquire
            return 0.0

    logs = sorted(log_dir.glob(f"{kind}-*.log"), key=written)
    for old in logs[: -(LOG_KEEP - 1)]:
        with contextlib.suppress(OSError):
            old.unlink()


def trust_for_acquire(repo: Repo, base: str | None = None, *, revoke: bool = False) -> TrustDoc:
    """``gitxact trust``: the ``.gitxact.toml`` an acquire from *base* would run (default:
    what the main worktree has checked out, as for an acquire), trusted or revoked."""
    main = next(iter(git.list_worktrees(repo.layout.common_dir)), None)
    _, commit = branches.resolve_base(repo, base, main)
    doc = trust.set_trust(repo, project_config.committed(repo, commit), revoke=revoke)
    if main is not None and not main.bare:
        try:
            edited = hashlib.sha256((main.path / project_config.CONFIG_FILE).read_bytes()).hexdigest()
        except OSError:
            edited = None
        doc.edited_in_main = edited != doc.sha256
    return doc
