"""Whether a worktree's transaction forbids a commit now, read without pydantic.

The pre-commit hook asks this on every commit in a worktree that has a journal, so it
reads ``state/journal-<id>.json`` with :mod:`gitxact.state.envelope` (verified, ``.bak``
fallback) instead of the pydantic model. This is the one definition of the rule:
:func:`gitxact.tx.journal.commit_blocker` answers through it, and the journal's file name and
schema number are defined here too. A commit is refused while the worktree is being rolled back, while a TDD
commit or a savepoint drop is half done, and while an interrupted step or a dead
holder waits for ``gitxact recover``.
"""

from __future__ import annotations

import os

from gitxact.state import envelope

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from typing import Any

#: The journal's schema number (:class:`gitxact.tx.journal.Journal` uses it).
SCHEMA = 1


def file_name(worktree_id: str) -> str:
    """A worktree's journal file, in ``state/`` (:func:`gitxact.tx.journal.file_name` is this)."""
    return f"journal-{worktree_id}.json"


#: Every worktree's journal file (and, with ``*`` after it, their backups).
JOURNAL_GLOB = file_name("*")


def worktree_id_of(name: str) -> str | None:
    """The worktree id whose journal file is *name*, or ``None`` if it names no journal."""
    stem = name.removeprefix("journal-").removesuffix(".json")
    return stem if stem and name == file_name(stem) else None


def journal_path(common_dir: str, worktree_id: str) -> str:
    return os.path.join(common_dir, "gitxact", "state", file_name(worktree_id))


def exists(common_dir: str, worktree_id: str) -> bool:
    path = journal_path(common_dir, worktree_id)
    return os.path.lexists(path) or os.path.lexists(path + ".bak")


def _dead(owner: Any) -> bool:
    """Provably gone (same host, pid dead or recycled), by filelock's owner probe.

    The hook runs Python without site-packages (``-I -S``, for speed); only here, when
    a transaction is actually open, are they switched on to reach filelock.
    """
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    try:
        from gitxact.util.identity import ProcessIdentity
    except ImportError:
        import site

        site.main()
        from gitxact.util.identity import ProcessIdentity
    start = owner.get("start")
    who = ProcessIdentity(
        pid=owner["pid"], host=str(owner.get("host", "")), start=start if isinstance(start, int) else None
    )
    return who.is_dead()


def commit_blocker(common_dir: str, worktree_id: str) -> str | None:
    """Why a commit in this worktree must be refused now, or ``None``."""
    if not exists(common_dir, worktree_id):
        return None
    data = envelope.load(journal_path(common_dir, worktree_id), "journal", SCHEMA)
    tx = data.get("tx") if data else None
    if not isinstance(tx, dict):
        return None
    label = str(tx.get("tx_id", "?")) + (f" ({tx['name']})" if tx.get("name") else "")
    step = tx.get("step")
    if isinstance(step, dict):
        if step.get("failed") or _dead(step.get("owner")):
            return f"transaction {label} in worktree {worktree_id!r} was interrupted; run `gitxact recover` first"
        phase = step.get("phase")
        if phase == "restore":
            return (
                f"transaction {label} in worktree {worktree_id!r} is rolling back to savepoint {step.get('target')!r}"
            )
        if phase in ("commit", "drop"):
            return f"transaction {label} in worktree {worktree_id!r} is finishing `{step.get('op')}`"
        return None
    if _dead(tx.get("holder")):
        return f"transaction {label} in worktree {worktree_id!r} was interrupted; run `gitxact recover` first"
    return None
