"""Whether ``gitxact status`` has a database part, and reading it.

Only a repository on PostgreSQL has one: on files :func:`database_overview` returns
``None`` having read git config and nothing else, so ``gitxact status`` on files never
imports psycopg (``tests/test_light_paths.py``).

An unreachable server is not an error here: status is what a person runs to find out
what is wrong, so it says ``reachable: false`` and why, and shows everything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.backends.choice import FILES, choose
from gitxact.backends.overview import unreached
from gitxact.errors import GitxactError

if TYPE_CHECKING:
    from gitxact.backends.overview import DatabaseDoc
    from gitxact.core.repo import Repo


def database_overview(repo: Repo) -> DatabaseDoc | None:
    """The database's holders, waiters and claims; ``None`` when *repo* coordinates on files.

    Backend settings that every command would refuse (the environment and git config
    disagreeing, a clone marked as on PostgreSQL about to use files) are shown as such,
    unreachable: status is where a person looks to find out why the others fail.
    """
    try:
        choice = choose(repo)
    except GitxactError as exc:
        return unreached("refused", "", exc.message)
    if choice.kind == FILES:
        return None
    from gitxact.backends.pg_overview import read_overview

    return read_overview(repo, choice)
