"""Which model each state file holds, so ``status`` and ``doctor`` can verify them all.

Every feature that adds a state file adds a row here (a glob on the file name).
"""

from __future__ import annotations

import fnmatch

from gitxact.state.store import Persisted


def _table() -> list[tuple[str, type[Persisted]]]:
    from gitxact.core.meta import Meta
    from gitxact.health.last_recover import RecoverState
    from gitxact.land.records import Landing
    from gitxact.leases.records import LeaseState
    from gitxact.tracker import TrackerState
    from gitxact.tx.journal import Journal

    return [
        ("meta.json", Meta),
        ("tracker.json", TrackerState),
        ("leases.json", LeaseState),
        ("journal-*.json", Journal),
        ("recover.json", RecoverState),
        ("landing.json", Landing),
    ]


def model_for(name: str) -> type[Persisted] | None:
    for pattern, model in _table():
        if fnmatch.fnmatchcase(name, pattern):
            return model
    return None
