"""Which model each state file holds, so ``status`` and ``doctor`` can verify them all.

Every feature that adds a state file adds a row here (a glob on the file name).
"""

from __future__ import annotations

import fnmatch

from gitxact.state import StateModel


def _table() -> list[tuple[str, type[StateModel]]]:
    from gitxact.journal import Journal
    from gitxact.leases import LeaseState
    from gitxact.recover import RecoverState
    from gitxact.tracker import TrackerState
    from gitxact.workspace import Meta

    return [
        ("meta.json", Meta),
        ("tracker.json", TrackerState),
        ("leases.json", LeaseState),
        ("journal-*.json", Journal),
        ("recover.json", RecoverState),
    ]


def model_for(name: str) -> type[StateModel] | None:
    for pattern, model in _table():
        if fnmatch.fnmatchcase(name, pattern):
            return model
    return None
