"""``gitxact.snapshotExpiry``: how long snapshots are kept, read apart from the dropping itself.

``status`` shows the expiry on its snapshot line and must not import what dropping needs
(its pydantic documents: nine interpreter start-ups, issue 14).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.errors import UsageError
from gitxact.git import run as git
from gitxact.util.durations import NEVER, parse_duration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

EXPIRY_KEY = "gitxact.snapshotExpiry"


def configured_expiry(repo: Repo) -> float | None:
    """``gitxact.snapshotExpiry`` in seconds; ``None`` (the default, or ``never``) keeps snapshots forever."""
    values = git.config_regexp(repo.layout.start, r"^gitxact\.snapshotexpiry$")
    if not values:
        return None
    raw = values[-1][1]  # the last one wins, as for any single-valued git setting
    if raw.strip().lower() in NEVER:
        return None
    seconds = parse_duration(raw, f"git config {EXPIRY_KEY} value")
    if seconds <= 0:
        raise UsageError(
            f"git config {EXPIRY_KEY}={raw!r} would expire every snapshot at once",
            hint="use a positive duration (7d, 12h) or `never` to keep snapshots",
        )
    return seconds
