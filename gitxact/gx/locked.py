"""``gx``'s locked path: take the locks a git command needs, ask the guard, run git.

Only commands that are not read-only come here (:mod:`gitxact.gx.main` execs the others).
The repository is found exactly as the user's git will find it (same ``-C``,
``--git-dir``, ``--work-tree``, inherited ``GIT_DIR``); outside any repository there is
nothing to lock and git runs as is (``gx clone``, ``gx init``, git's own errors).

Git runs as a child with our stdin/stdout/stderr, and with ``GITXACT_LOCKS`` naming our
locks, so its hooks (and anything they run through ``gx`` or ``gitxact``) inherit
them instead of waiting on their own parent. While any lease is active, auto-gc and
auto-maintenance are switched off for the command (``-c gc.auto=0 -c
maintenance.auto=false``, placed last among the global options so they win). An
``index.lock`` that a killed git left in this worktree is removed first, when provably
orphaned (:mod:`gitxact.git.lockfiles`).

This path avoids pydantic (the leases are read by :mod:`gitxact.leases.reader`): a ``gx
commit`` pays for the lock layer and two small git queries, not for the state models.
"""

from __future__ import annotations

import os
import time

from gitxact.errors import GitError, GitxactError, NotARepositoryError, RefusedError
from gitxact.git import lite, locate, started
from gitxact.gx import guard, rules
from gitxact.leases import reader as lease_reader
from gitxact.locking.locks import LockKey, Locks, resource_key, worktree_key
from gitxact.locking.tickets import EXCLUSIVE, Mode, Party
from gitxact.util import console
from gitxact.util.names import agent_from_env

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from gitxact.gx.cmdline import Invocation

QUIET_AUTO_GC = ["-c", "gc.auto=0", "-c", "maintenance.auto=false"]


def run_locked(argv: list[str], given: Invocation, resolved: Invocation, rule: rules.Rule) -> int:
    """Run ``git ARGV`` (as typed) under *rule*'s locks; *resolved* is the alias-expanded form."""
    cwd = os.getcwd()
    place = _where(given, cwd)
    if place is None:
        return lite.run_tied(argv, cwd, lite.passthrough_env())
    common_dir, worktree_id = place
    locks = Locks(
        os.path.join(common_dir, "gitxact", "locks"),
        default_timeout=lambda: _lock_timeout(given, cwd),  # read only if the lock is busy
        agent=agent_from_env(),
        observer=WaitNotices(),
    )
    begun = time.monotonic()
    if rule.lock == rules.REFS:  # git's own ref locks suffice; the guard still looks
        leases = lease_reader.load(common_dir)
        _attribute(locks, leases, cwd)
        _guard(locks, resolved, rule, leases)
        code = lite.run_tied(argv, cwd, lite.passthrough_env(locks.child_env()))
        locks.events.emit("gx", locks.agent, cmd=resolved.command, code=code, secs=time.monotonic() - begun)
        return code
    key = worktree_key(worktree_id)
    with _locks_for(locks, rule, key, common_dir):
        leases = lease_reader.load(common_dir)
        _attribute(locks, leases, cwd)
        _guard(locks, resolved, rule, leases)
        record = started.record_path(locks.lock_dir, key.name)
        if started.read(record) is not None:  # a git gx started here was not seen to end
            _clear_after_killed_git(given, cwd, record)
        if leases:
            at = given.command_index if given.command is not None else 0
            argv = [*argv[:at], *QUIET_AUTO_GC, *argv[at:]]
        env = lite.passthrough_env(locks.child_env())
        try:
            code = lite.run_tied(argv, cwd, env, started=lambda pid: started.note(record, pid, locks.file_mode))
        finally:
            started.forget(record)
    # Recorded after the locks are let go: the next waiter never waits for our bookkeeping.
    locks.events.emit("gx", locks.agent, cmd=resolved.command, code=code, secs=time.monotonic() - begun)
    return code


def _where(given: Invocation, cwd: str) -> tuple[str, str] | None:
    """``(common dir, worktree id)`` where git will run, or ``None`` outside any repository.

    Found without running git when the walk can be sure (:mod:`gitxact.git.locate`); else
    asked of git, with the user's own locating options (``--git-dir``, ``GIT_DIR``...).
    """
    if locate.plain_options(given.locating):
        found = locate.locate(given.workdir(cwd))
        if found is not None:
            return found.common_dir, found.worktree_id
    from gitxact.git import run as git  # only when git must be asked

    try:
        layout = git.discover(options=given.locating)
    except NotARepositoryError:
        return None
    return str(layout.common_dir), layout.worktree_id


def _clear_after_killed_git(given: Invocation, cwd: str, record: str) -> None:
    """A killed gx's git may have left ``index.lock``: remove it if provably orphaned (rare path)."""
    from gitxact.git import lockfiles
    from gitxact.git import run as git

    try:
        layout = git.discover(options=given.locating)
    except NotARepositoryError:
        return
    cleared = lockfiles.clear_stale_index_lock(layout.git_dir, layout.worktree, record)
    if cleared is not None:
        console.warn(cleared)


def _attribute(locks: Locks, leases: list[lease_reader.LeaseView], cwd: str) -> None:
    """Name our events and lock holds for the agent whose lease holds *cwd*, if the process named none.

    As :attr:`gitxact.core.repo.Repo.attribution`: a name for ``stats``, never a grant.
    """
    if locks.agent is None and leases:
        lease = lease_reader.for_path(leases, cwd)
        if lease is not None:
            locks.agent = lease.agent


def _guard(locks: Locks, resolved: Invocation, rule: rules.Rule, leases: list[lease_reader.LeaseView]) -> None:
    """The guard's check, with its refusal in the event record (what `gitxact stats` counts)."""
    try:
        guard.check(resolved, rule, leases)
    except RefusedError as refused:
        locks.events.emit("refusal", locks.agent, by="gx", what=refused.message.split("\n", 1)[0])
        raise


def _lock_timeout(given: Invocation, cwd: str) -> float:
    """``gitxact.lockTimeout``, or the default: gx never refuses git's work over its own settings.

    A config git itself cannot read here (a ``core.worktree`` that does not resolve, say)
    is git's to report when it runs; a bad gitxact value is named once on stderr.
    """
    from gitxact.core import settings  # only when a lock is busy: a git process and pathlib
    from gitxact.git import run as git

    try:
        layout = git.discover(options=given.locating)
        return settings.load(layout.worktree or layout.git_dir).lock_timeout
    except GitError:
        return settings.Settings().lock_timeout
    except GitxactError as exc:
        console.warn(f"{exc.message}; using the default lock timeout")
        return settings.Settings().lock_timeout


def _locks_for(locks: Locks, rule: rules.Rule, worktree: LockKey, common_dir: str) -> AbstractContextManager[object]:
    """Repository-wide work: the whole repository (every worktree). Else this worktree and the rule's resources."""
    if rule.lock == rules.REPOSITORY:
        return locks.world(lambda: lite.worktree_ids(common_dir))
    return locks.stack(lock_plan(rule, worktree))


def lock_plan(rule: rules.Rule, worktree: LockKey) -> list[tuple[LockKey, Mode]]:
    """The locks a worktree-level *rule* needs, for the worktree (lock) git will run in."""
    return [(worktree, EXCLUSIVE)] + [(resource_key(name), EXCLUSIVE) for name in rule.resources]


class WaitNotices:
    """Tells the person at the terminal why git has not started yet (stderr, once per wait)."""

    def waiting(self, key: LockKey, mode: Mode, elapsed: float, holders: list[Party]) -> None:
        if elapsed < 2.0:  # the observer is called about once a second; say it once
            who = "; ".join(p.describe() for p in holders) if holders else "waiters ahead in the queue"
            console.info(f"waiting for {key.describe()} ({mode}): {who}")

    def acquired(self, key: LockKey, mode: Mode, waited: float) -> None:
        console.info(f"got {key.describe()} after {waited:.1f}s")
