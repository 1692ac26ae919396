"""``--json`` documents written by hand, for commands that must not import pydantic.

Importing pydantic costs several bare interpreter start-ups (issue 14), so the documents of
``status`` and ``worktree list`` are plain classes: their fields are ``FIELDS``, in the
order they print, laid out as pydantic's ``model_dump_json(by_alias=True, indent=2)`` lays
out every other command's document (``"schema": 1`` first, two spaces). These classes are
the one definition of those documents: no pydantic model of them exists, and
tests/test_json_shapes.py holds what they print to the tables of docs/commands.md ("The
JSON of `worktree list` and `status`"). A nested pydantic model (a transaction, when a
journal exists) is dumped by its own ``model_dump``. Start-up: saves over 0.1 S on status
(docs/benchmark.md, "Start-up tricks"). Nothing here validates input: these are built by
gitxact from verified state, never read back.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Protocol

#: The version every document carries as ``"schema"`` (a change of shape changes it).
SCHEMA = 1


class JsonDocument(Protocol):
    """What a command prints with ``--json``: a pydantic :class:`~gitxact.core.documents.Document`
    or a :class:`PlainDocument`."""

    def to_json(self) -> str: ...


def _plain(value: Any) -> Any:
    if isinstance(value, PlainModel):
        return value.to_dict()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    dump = getattr(value, "model_dump", None)  # a pydantic model, without importing pydantic
    if callable(dump):
        return dump(mode="json", by_alias=True)
    return value


class PlainModel:
    """A record nested in a document: :attr:`FIELDS` are its fields in the order they print
    (also its ``__slots__``, which ruff keeps sorted and so cannot give the order)."""

    FIELDS: ClassVar[tuple[str, ...]] = ()
    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return {name: _plain(getattr(self, name)) for name in self.FIELDS}

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the pydantic models they replace

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"{type(self).__name__}({inner})"


class PlainDocument(PlainModel):
    """A whole document: ``"schema": 1`` first, like every pydantic ``Document``."""

    schema_version: ClassVar[int] = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema_version, **super().to_dict()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
