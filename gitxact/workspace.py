"""``Workspace``: the library's front door, one repository seen from one path.

An orchestrator in Python uses this instead of spawning the CLI; the CLI commands are
thin wrappers around its methods. It resolves the repository once, reads settings
once, and owns the lock manager and state store every feature shares.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from gitxact import config, git
from gitxact._version import __version__
from gitxact.documents import Document
from gitxact.identity import agent_from_env, validate_agent
from gitxact.lockqueue import EXCLUSIVE, Mode
from gitxact.locks import Grant, Locks, WaitObserver
from gitxact.state import M, StateFile, StateModel, StateStore

if TYPE_CHECKING:
    from gitxact.recover import RecoverDoc
    from gitxact.tdd import TddSequence
    from gitxact.tracker import Tracker
    from gitxact.transactions import Transaction, Transactions
    from gitxact.worktrees import Worktrees

LOCKS_DIR = "locks"
STATE_DIR = "state"
LOGS_DIR = "logs"


class Meta(StateModel):
    """Written by ``init``: which gitxact created the folder, and when."""

    KIND: ClassVar[str] = "meta"
    SCHEMA: ClassVar[int] = 1

    created: float = 0.0
    created_by_version: str = ""
    initialized: bool = False


class InitResult(Document):
    state_dir: str
    created: bool
    settings: dict[str, str | float | None]


class Workspace:
    """A repository as gitxact sees it from *path* (any folder inside any worktree)."""

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
        self.settings = config.load(self.layout.start)
        self.store = StateStore(self.layout.state_dir)
        self.locks = Locks(
            self.layout.state_dir / LOCKS_DIR,
            default_timeout=self.settings.lock_timeout if timeout is None else timeout,
            agent=self.agent,
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

    # -- features ------------------------------------------------------------------------

    def init(self) -> InitResult:
        """Create the state folder and its defaults; running it again changes nothing."""
        self.store.ensure(LOCKS_DIR, STATE_DIR, LOGS_DIR)
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

    @contextlib.contextmanager
    def lock(self, mode: Mode = EXCLUSIVE, timeout: float | None = None) -> Iterator[Grant]:
        """Hold the repository lock (exclusive by default) for the ``with`` block."""
        self.store.ensure(LOCKS_DIR)
        with self.locks.repository(mode, timeout) as grant:
            yield grant

    @contextlib.contextmanager
    def worktree_lock(self, timeout: float | None = None) -> Iterator[None]:
        """Repository shared + this worktree exclusive: what worktree-local git work needs."""
        self.store.ensure(LOCKS_DIR)
        with self.locks.worktree(self.layout.worktree_id, timeout):
            yield

    def state_file(self, name: str, model: type[M]) -> StateFile[M]:
        """A state file under ``gitxact/state/`` (created on first write)."""
        self.store.ensure(STATE_DIR)
        return self.store.file(name, model, subdir=STATE_DIR)

    @cached_property
    def tracker(self) -> Tracker:
        from gitxact.tracker import Tracker, TrackerState

        self.store.ensure(LOCKS_DIR)
        return Tracker(self.state_file("tracker.json", TrackerState), self.locks, self.agent)

    @cached_property
    def worktrees(self) -> Worktrees:
        """Leased agent worktrees: acquire, release, renew, list, reap, ``lease()``."""
        from gitxact.worktrees import Worktrees

        return Worktrees(self)

    @cached_property
    def transactions(self) -> Transactions:
        """This worktree's transactions: begin / savepoint / rollback / commit."""
        from gitxact.transactions import Transactions

        return Transactions(self)

    def transaction(self, name: str | None = None) -> Transaction:
        """``with ws.transaction() as tx:`` commits at the end of the block, rolls back if it raises."""
        from gitxact.transactions import Transaction

        return Transaction(self.transactions, name)

    def tdd(self, check: str | None = None, *, shell: bool = False, timeout: float | None = None) -> TddSequence:
        """``with ws.tdd(check="pytest -q") as seq:`` red / green / refactor; done at the end, abort on error."""
        from gitxact.tdd import TddSequence

        return TddSequence(self, check, shell=shell, timeout=timeout)

    def recover(self) -> RecoverDoc:
        """Finish or roll back interrupted transactions and clear git locks left by dead processes."""
        from gitxact.recover import run_recover

        return run_recover(self)
