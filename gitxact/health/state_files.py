"""Which model each state file holds, so ``status`` and ``doctor`` can verify them all.

Every feature that adds a state file adds a branch here (a glob on the file name), and its
model is a :class:`~gitxact.state.record.Record` (tests/test_one_record_kind.py holds both). A
model is imported only when a file of its kind is there: ``status`` verifies every state
file, and need not import the journal's or the landing queue's modules (with what they
import) in a repository that has neither.
"""

from __future__ import annotations

import fnmatch

from gitxact.leases.reader import LEASES_FILE
from gitxact.state.record import Record
from gitxact.tx.journal_reader import JOURNAL_GLOB

#: The file-name globs :func:`model_for` knows, in its order.
PATTERNS = (
    "meta.json",
    "tracker.json",
    LEASES_FILE,
    JOURNAL_GLOB,
    "recover.json",
    "landing.json",
    "trust.json",
    "landed.json",
)


def model_for(name: str) -> type[Record] | None:
    pattern = next((p for p in PATTERNS if fnmatch.fnmatchcase(name, p)), None)
    if pattern == "meta.json":
        from gitxact.core.meta import Meta

        return Meta
    if pattern == "tracker.json":
        from gitxact.tracker import TrackerState

        return TrackerState
    if pattern == LEASES_FILE:
        from gitxact.leases.records import LeaseState

        return LeaseState
    if pattern == JOURNAL_GLOB:
        from gitxact.tx.journal import Journal

        return Journal
    if pattern == "recover.json":
        from gitxact.health.last_recover import RecoverState

        return RecoverState
    if pattern == "landing.json":
        from gitxact.land.records import Landing

        return Landing
    if pattern == "trust.json":
        from gitxact.project.trust import TrustState

        return TrustState
    if pattern == "landed.json":
        from gitxact.worktrees.landed import LandedState

        return LandedState
    return None
