"""What ``init`` writes and prints: the ``meta.json`` state model and the init document.

Apart from :mod:`gitxact.core.repo` so that opening a repository does not import
pydantic; only ``init`` (and ``doctor``, which verifies every state file) needs these.
"""

from __future__ import annotations

from typing import ClassVar

from gitxact.core.documents import Document
from gitxact.state.models import StateModel


class Meta(StateModel):
    """Written by ``init``: which gitxact created the folder, and when."""

    KIND: ClassVar[str] = "meta"
    SCHEMA: ClassVar[int] = 1

    created: float = 0.0
    created_by_version: str = ""
    initialized: bool = False


class InitResult(Document):
    state_dir: str
    created: bool
    settings: dict[str, str | float | None]
