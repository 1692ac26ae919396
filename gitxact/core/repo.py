"""``Repo``: one repository as gitxact sees it from one path; what every feature takes.

It resolves the repository once, reads the settings once, and owns the lock manager,
the state store and the way git is run. Features (worktrees, transactions, the
tracker, health) take a ``Repo`` and never the :class:`~gitxact.workspace.Workspace`
facade built on top of them, so imports point one way: facade -> features -> core.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact._version import __version__
from gitxact.core import settings
from gitxact.git import lite
from gitxact.git import run as git
from gitxact.locking.locks import Grant, Locks, WaitObserver
from gitxact.locking.tickets import EXCLUSIVE, Mode
from gitxact.state.store import M, StateFile, StateStore
from gitxact.util.names import agent_from_env, validate_agent

if TYPE_CHECKING:
    from gitxact.core.documents import InitResult

LOCKS_DIR = "locks"
STATE_DIR = "state"
LOGS_DIR = "logs"


class Repo:
    """A repository as gitxact sees it from *path* (any folder inside any worktree).

    ``agent`` is who the process says it acts for (the argument or ``GITXACT_AGENT``): what
    the agent boundaries check. ``attribution`` is who its events and lock holds are named
    for: that agent, or else the agent whose lease holds the worktree the process runs in
    (a shell-run agent rarely exports ``GITXACT_AGENT``, and ``stats`` would count its
    lands and transactions for nobody; :class:`gitxact.workspace.Workspace`, a layer above
    the leases, sets that). It never grants anything.
    """

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        agent: str | None = None,
        timeout: float | None = None,
        observer: WaitObserver | None = None,
    ) -> None:
        self.layout = git.discover(path)
        self.agent = validate_agent(agent) if agent is not None else agent_from_env()
        self.attribution = self.agent
        self.settings = settings.load(self.layout.start)
        self.store = StateStore(self.layout.state_dir)
        self.locks = Locks(
            self.layout.state_dir / LOCKS_DIR,
            default_timeout=self.settings.lock_timeout if timeout is None else timeout,
            agent=self.attribution,
            observer=observer,
        )

    # -- paths ----------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.layout.state_dir

    def state_path(self, name: str) -> Path:
        return self.layout.state_dir / STATE_DIR / name

    def log_dir(self) -> Path:
        return self.store.ensure(LOGS_DIR) / LOGS_DIR

    def state_file(self, name: str, model: type[M]) -> StateFile[M]:
        """A state file under ``gitxact/state/`` (created on first write)."""
        self.store.ensure(STATE_DIR)
        return self.store.file(name, model, subdir=STATE_DIR)

    # -- running git ---------------------------------------------------------------------

    def git(
        self,
        args: Sequence[str],
        *,
        cwd: Path | None = None,
        check: bool = True,
        input: str | bytes | None = None,
        env: Mapping[str, str] | None = None,
        read_only: bool = False,
    ) -> git.GitResult:
        """Run git in *cwd* (default: this worktree, else the common dir), passing our locks to hooks."""
        where = cwd or self.layout.worktree or self.layout.common_dir
        child = {**self.locks.child_env(), **(env or {})}
        return git.run(args, where, check=check, input=input, env=child, read_only=read_only)

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, mode: Mode = EXCLUSIVE, timeout: float | None = None) -> Iterator[Grant]:
        """Exclusive (the default): the repository and every worktree, so no git runs anywhere
        for the ``with`` block. Shared: only keeps exclusive holders out."""
        self.store.ensure(LOCKS_DIR)
        if mode == EXCLUSIVE:
            with self.locks.world(lambda: lite.worktree_ids(self.layout.common_dir), timeout) as grant:
                yield grant
        else:
            with self.locks.repository(mode, timeout) as grant:
                yield grant

    @contextlib.contextmanager
    def worktree_lock(self, timeout: float | None = None) -> Iterator[Grant]:
        """This worktree exclusive: what git work inside one worktree needs."""
        self.store.ensure(LOCKS_DIR)
        with self.locks.worktree(self.layout.worktree_id, timeout) as grant:
            yield grant

    # -- the state folder ----------------------------------------------------------------

    def init(self) -> InitResult:
        """Create the state folder and its defaults; running it again changes nothing."""
        from gitxact.core.documents import InitResult
        from gitxact.core.meta import Meta

        self.store.ensure(LOCKS_DIR, STATE_DIR, LOGS_DIR)
        self.store.share()
        meta_file = self.state_file("meta.json", Meta)
        created = False
        with self.locks.resource("meta"):
            meta = meta_file.load(repair=True)
            if not meta.initialized:
                meta_file.save(Meta(created=time.time(), created_by_version=__version__, initialized=True))
                created = True
        s = self.settings
        return InitResult(
            state_dir=str(self.state_dir),
            created=created,
            settings={
                "gitxact.lockTimeout": s.lock_timeout,
                "gitxact.worktreeRoot": s.worktree_root,
                "gitxact.branchPrefix": s.branch_prefix,
                "gitxact.leaseTtl": s.lease_ttl,
                "gitxact.savepointKeep": s.savepoint_keep,
                "gitxact.checkTimeout": s.check_timeout,
            },
        )
