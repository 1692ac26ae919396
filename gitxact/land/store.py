"""Which landing queue a repository uses: ``landing.json`` on files, the shared table on PostgreSQL.

Apart from :mod:`gitxact.land.records` so that the records never import the database
side (:mod:`gitxact.land.shared` builds on them; psycopg is imported only when chosen).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.backends.choice import FILES, choose
from gitxact.land.records import LandingFile

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


def open_landing(repo: Repo) -> LandingFile:
    """The landing queue of *repo*'s chosen backend; ``close()`` it when done."""
    choice = choose(repo)
    if choice.kind == FILES:
        return LandingFile(repo)
    from gitxact.land.shared import SharedLanding

    return SharedLanding.open(repo, choice)
