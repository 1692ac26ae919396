"""The ``--json`` documents of ``gitxact tracker`` (imported only with ``--json``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from gitxact.core.documents import Document


class EntryDoc(Document):
    key: str
    value: Any
    version: int
    updated: float
    by: str | None = None


class EntriesDoc(Document):
    entries: dict[str, dict[str, Any]] = Field(default_factory=dict)
