"""The named locks of a repository, on whichever backend it coordinates through.

What a landing queue (``gitxact land``) or ``gitxact lock --name`` serializes on:

    from gitxact.backends.named import open_named_locks

    locks = open_named_locks(repo)          # FileNamedLocks or PostgresNamedLocks
    with locks.hold("land", timeout=600) as grant:
        ...                                 # one lander at a time, every host
        grant.check()                       # LockLostError if the lock ended meanwhile
    locks.holders("land")                   # [Party(host, pid, agent, command, since)]
    locks.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.backends.choice import FILES, choose
from gitxact.backends.files import FileNamedLocks

if TYPE_CHECKING:
    from gitxact.backends.base import NamedLocks
    from gitxact.core.repo import Repo


def open_named_locks(repo: Repo) -> NamedLocks:
    """The named locks of *repo* on its chosen backend (see :class:`~gitxact.backends.base.NamedLocks`)."""
    choice = choose(repo)
    if choice.kind == FILES:
        return FileNamedLocks(repo)
    from gitxact.backends.pg_locks import PostgresNamedLocks

    return PostgresNamedLocks.open(repo, choice)
