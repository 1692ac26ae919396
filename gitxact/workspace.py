"""``Workspace``: the library's front door, a :class:`~gitxact.core.repo.Repo` with its features.

An orchestrator in Python uses this instead of spawning the CLI; the CLI commands are
thin wrappers around it. It only composes: each feature lives in its own package and
takes the ``Repo`` underneath, never this facade, so nothing below imports it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from gitxact.core.repo import Repo
from gitxact.leases import reader as lease_reader

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    from gitxact.health.recover import RecoverDoc
    from gitxact.land.foresight import ConflictsDoc, DryRunDoc
    from gitxact.land.queue import Progress
    from gitxact.land.records import Strategy
    from gitxact.land.results import LandDoc
    from gitxact.locking.locks import WaitObserver
    from gitxact.snapshots.manager import Snapshots
    from gitxact.tracker import Tracker
    from gitxact.tx.checks import Check, Echo
    from gitxact.tx.tdd import TddSequence
    from gitxact.tx.transactions import Transaction, Transactions
    from gitxact.worktrees.manager import Worktrees


class Workspace(Repo):
    """A repository seen from *path*, with the tracker, worktrees, snapshots, transactions, TDD and recover."""

    def __init__(
        self,
        path: Path | str | None = None,
        *,
        agent: str | None = None,
        timeout: float | None = None,
        observer: WaitObserver | None = None,
    ) -> None:
        super().__init__(path, agent=agent, timeout=timeout, observer=observer)
        if self.agent is None and self.layout.worktree is not None and not self.layout.is_main_worktree:
            # Events and lock holds are named for the leased worktree's agent (a name, never a grant).
            self.attribution = lease_reader.agent_of_worktree(self.layout.common_dir, self.layout.worktree)
            self.locks.agent = self.attribution

    @cached_property
    def tracker(self) -> Tracker:
        """The shared key -> JSON tracker: get, set, incr, compare-and-set."""
        from gitxact.tracker import open_tracker

        return open_tracker(self)

    @cached_property
    def worktrees(self) -> Worktrees:
        """Leased agent worktrees: acquire, release, renew, list, reap, ``lease()``."""
        from gitxact.worktrees.manager import Worktrees

        return Worktrees(self)

    @cached_property
    def snapshots(self) -> Snapshots:
        """Uncommitted work kept in snapshot refs: list, show, restore, drop, expire."""
        from gitxact.snapshots.manager import Snapshots

        return Snapshots(self)

    @cached_property
    def transactions(self) -> Transactions:
        """This worktree's transactions: begin / savepoint / rollback / commit."""
        from gitxact.tx.transactions import Transactions

        return Transactions(self)

    def transaction(self, name: str | None = None) -> Transaction:
        """``with ws.transaction() as tx:`` commits at the end of the block, rolls back if it raises."""
        from gitxact.tx.transactions import Transaction

        return Transaction(self.transactions, name)

    def tdd(
        self,
        check: Check | None = None,
        *,
        shell: bool = False,
        timeout: float | None = None,
        red_exit: Collection[int] | None = None,
    ) -> TddSequence:
        """``with ws.tdd(check="pytest -q") as seq:`` red / green / refactor; done at the end, abort on error.

        *check* is a command line (run by sh if it has shell syntax) or an exact argv list;
        *red_exit*, the exit codes that mean "tests failed" for red (``--red-exit``).
        """
        from gitxact.tx.tdd import TddSequence

        return TddSequence(self, check, shell=shell, timeout=timeout, red_exit=red_exit)

    def land(
        self,
        branch: str | None = None,
        *,
        onto: str,
        remote: str | None = None,
        check: Check | None = None,
        shell: bool = False,
        check_timeout: float | None = None,
        strategy: Strategy = "rebase",
        batch: int = 1,
        parallel: int | None = None,
        retries: int = 5,
        timeout: float | None = None,
        progress: Progress | None = None,
        echo: Echo | None = None,
    ) -> LandDoc:
        """Land *branch* onto *onto* through its first-come, first-served queue (``gitxact land``).

        Refusals (a conflict, a failing check) raise ``LandRefusedError`` (exit 3) with the
        outcome in ``.doc``; the target never moves then. A target leased to another agent
        than this one (``agent=``, else the lease of the worktree at *path*) raises
        ``LeasedByOtherError`` (exit 3, ``reason == "leased_by_other"``) before anything is queued.
        *parallel* (default: ``gitxact.landParallel``) is how many candidates the queue's
        server builds, each on the ones before it, and checks at once.
        """
        from gitxact.land.queue import land

        return land(
            self,
            onto=onto,
            branch=branch,
            remote=remote,
            check=check,
            shell=shell,
            check_timeout=check_timeout,
            strategy=strategy,
            batch=batch,
            parallel=parallel,
            retries=retries,
            timeout=timeout,
            progress=progress,
            echo=echo,
        )

    def would_land(self, branch: str | None = None, *, onto: str, remote: str | None = None) -> DryRunDoc:
        """``land --dry-run``: would *branch* land onto *onto* now, with which conflicts, after whom.

        A function of its own rather than ``land(dry_run=True)``: one return type each.
        Files no request and moves no ref; the check is not run.
        """
        from gitxact.land.foresight import dry_run
        from gitxact.land.queue import default_branch

        return dry_run(self, onto=onto, branch=branch or default_branch(self), remote=remote)

    def conflicts(self, onto: str | None = None) -> ConflictsDoc:
        """Which live leases' branches would conflict with *onto* and with each other (nothing changes)."""
        from gitxact.land.foresight import conflicts, default_target

        return conflicts(self, onto if onto is not None else default_target(self))

    def recover(self) -> RecoverDoc:
        """Finish or roll back interrupted transactions and clear git locks left by dead processes."""
        from gitxact.health.recover import run_recover

        return run_recover(self)
