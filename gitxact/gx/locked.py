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

import contextlib
import os
import time

from gitxact.core import settings
from gitxact.errors import GitError, GitxactError, NotARepositoryError, RefusedError
from gitxact.git import lockfiles
from gitxact.git import run as git
from gitxact.gx import guard, rules
from gitxact.gx.cmdline import Invocation
from gitxact.leases import reader as lease_reader
from gitxact.locking.locks import LockKey, Locks, resource_key, worktree_key
from gitxact.locking.tickets import EXCLUSIVE, Mode, Party
from gitxact.util import console
from gitxact.util.names import agent_from_env

QUIET_AUTO_GC = ["-c", "gc.auto=0", "-c", "maintenance.auto=false"]


def run_locked(argv: list[str], given: Invocation, resolved: Invocation, rule: rules.Rule) -> int:
    """Run ``git ARGV`` (as typed) under *rule*'s locks; *resolved* is the alias-expanded form."""
    cwd = os.getcwd()
    try:
        layout = git.discover(options=given.locating)
    except NotARepositoryError:
        return git.run_streaming(argv, cwd)
    locks = Locks(
        layout.state_dir / "locks",
        default_timeout=lambda: _lock_timeout(layout),  # read only if the lock is busy
        agent=agent_from_env(),
        observer=WaitNotices(),
    )
    started = time.monotonic()
    if rule.lock == rules.REFS:  # git's own ref locks suffice; the guard still looks
        _guard(locks, resolved, rule, lease_reader.load(layout.common_dir))
        code = git.run_streaming(argv, cwd, env=locks.child_env())
        locks.events.emit("gx", locks.agent, cmd=resolved.command, code=code, secs=time.monotonic() - started)
        return code
    key = worktree_key(layout.worktree_id)
    with _locks_for(locks, rule, key, layout):
        leases = lease_reader.load(layout.common_dir)
        _guard(locks, resolved, rule, leases)
        record = lockfiles.started_record(locks.lock_dir, key.name)
        cleared = lockfiles.clear_stale_index_lock(layout.git_dir, layout.worktree, record)
        if cleared is not None:
            console.warn(cleared)
        if leases:
            at = given.command_index if given.command is not None else 0
            argv = [*argv[:at], *QUIET_AUTO_GC, *argv[at:]]
        try:
            code = git.run_streaming(
                argv, cwd, env=locks.child_env(), started=lambda pid: lockfiles.note_started(record, pid)
            )
        finally:
            lockfiles.forget_started(record)
    # Recorded after the locks are let go: the next waiter never waits for our bookkeeping.
    locks.events.emit("gx", locks.agent, cmd=resolved.command, code=code, secs=time.monotonic() - started)
    return code


def _guard(locks: Locks, resolved: Invocation, rule: rules.Rule, leases: list[lease_reader.LeaseView]) -> None:
    """The guard's check, with its refusal in the event record (what `gitxact stats` counts)."""
    try:
        guard.check(resolved, rule, leases)
    except RefusedError as refused:
        locks.events.emit("refusal", locks.agent, by="gx", what=refused.message.split("\n", 1)[0])
        raise


def _lock_timeout(layout: git.RepoLayout) -> float:
    """``gitxact.lockTimeout``, or the default: gx never refuses git's work over its own settings.

    A config git itself cannot read here (a ``core.worktree`` that does not resolve, say)
    is git's to report when it runs; a bad gitxact value is named once on stderr.
    """
    try:
        return settings.load(layout.worktree or layout.git_dir).lock_timeout
    except GitError:
        return settings.Settings().lock_timeout
    except GitxactError as exc:
        console.warn(f"{exc.message}; using the default lock timeout")
        return settings.Settings().lock_timeout


def _locks_for(
    locks: Locks, rule: rules.Rule, worktree: LockKey, layout: git.RepoLayout
) -> contextlib.AbstractContextManager[object]:
    """Repository-wide work: the whole repository (every worktree). Else this worktree and the rule's resources."""
    if rule.lock == rules.REPOSITORY:
        return locks.world(lambda: git.worktree_ids(layout.common_dir))
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
