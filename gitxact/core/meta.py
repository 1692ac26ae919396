"""The ``meta.json`` state model: which gitxact created the state folder, and when.

Exactly these fields (``EXTRA_FORBIDDEN``), each optional.
"""

from __future__ import annotations

from typing import ClassVar

from gitxact.state.record import FLAG, NUMBER, STRING, Record, field


class Meta(Record):
    """Written by ``init``: which gitxact created the folder, and when."""

    KIND: ClassVar[str] = "meta"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    created: float = field(NUMBER, default=0.0)
    created_by_version: str = field(STRING, default="")
    initialized: bool = field(FLAG, default=False)
