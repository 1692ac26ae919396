"""The named locks of a repository, on whichever backend it coordinates through.

What a landing queue (``gitxact land``) or ``gitxact lock --name`` serializes on:

    from gitxact.backends.named import open_named_locks

    locks = open_named_locks(repo)          # FileNamedLocks or PostgresNamedLocks
    with locks.hold("land", timeout=600, on_lost=stop_work) as grant:
        ...                                 # one lander at a time, every host
        grant.check()                       # LockLostError if the lock ended meanwhile
        write_to_resource(fence=grant.fence)  # the resource refuses a fence lower than one it saw
    locks.holders("land")                   # [Party(host, pid, agent, command, since)]
    locks.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.backends.choice import FILES, choose
from gitxact.backends.files import FileNamedLocks

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from gitxact.backends.base import NamedLocks
    from gitxact.core.repo import Repo
    from gitxact.errors import LockLostError
    from gitxact.locking.tickets import Mode

#: What ``gitxact lock --name`` tells its command: the grant's fencing token.
FENCE_ENV = "GITXACT_FENCE"


def open_named_locks(repo: Repo) -> NamedLocks:
    """The named locks of *repo* on its chosen backend (see :class:`~gitxact.backends.base.NamedLocks`)."""
    choice = choose(repo)
    if choice.kind == FILES:
        return FileNamedLocks(repo)
    from gitxact.backends.pg_locks import PostgresNamedLocks

    return PostgresNamedLocks.open(repo, choice)


def run_named(
    repo: Repo, name: str, mode: Mode, timeout: float | None, argv: Sequence[str], *, env: Mapping[str, str]
) -> int:
    """``gitxact lock --name NAME -- CMD``: CMD's exit status, run holding *name*.

    CMD runs in a process group of its own with ``GITXACT_FENCE`` set to the grant's
    fence. If the lock is lost while CMD runs, the group is ended (SIGTERM, then SIGKILL
    after :data:`~gitxact.backends.bounds.STOP_GRACE`) before the server can free the
    lock, and :class:`~gitxact.errors.LockLostError` (exit 75) says so.
    """
    from gitxact.backends.bounds import STOP_GRACE
    from gitxact.util.jobgroup import Job

    lost: list[LockLostError] = []
    job: list[Job] = []

    def stop(error: LockLostError) -> None:  # called from the lock's watch thread
        lost.append(error)
        if job:
            job[0].end(STOP_GRACE)

    named = open_named_locks(repo)
    try:
        with named.hold(name, mode, timeout, on_lost=stop) as grant:
            child_env = dict(env)
            if grant.fence is not None:
                child_env[FENCE_ENV] = str(grant.fence)
            if lost:  # lost before CMD started: it never runs under a lock that is gone
                raise lost[0]
            job.append(Job(argv, env=child_env))
            if lost:  # lost while it started: the watch found no job to end
                job[0].end(STOP_GRACE)
            status = job[0].wait()
            if lost:
                job[0].wait_ended(3 * STOP_GRACE)
                error = lost[0]
                error.message += f"; the command was ended ({job[0].how or 'it had already exited'})"
                raise error
            return status
    finally:
        named.close()
