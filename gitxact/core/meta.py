"""The ``meta.json`` state model: which gitxact created the state folder, and when.

Validated by hand (see :mod:`gitxact.state.fields`), not by pydantic: ``status`` verifies
every state file and must not pay for importing pydantic. The rules are the ones the
pydantic model had: exactly these fields (``extra="forbid"``), each optional.
"""

from __future__ import annotations

from typing import Any, ClassVar

from gitxact.state import fields

_SPEC: fields.Spec = (
    ("created", fields.NUMBER, 0.0),
    ("created_by_version", fields.STRING, ""),
    ("initialized", fields.FLAG, False),
)
_FIELDS = frozenset(name for name, _, _ in _SPEC)


class Meta:
    """Written by ``init``: which gitxact created the folder, and when."""

    KIND: ClassVar[str] = "meta"
    SCHEMA: ClassVar[int] = 1

    __slots__ = ("created", "created_by_version", "initialized")

    def __init__(self, *, created: float = 0.0, created_by_version: str = "", initialized: bool = False) -> None:
        self.created = created
        self.created_by_version = created_by_version
        self.initialized = initialized

    @classmethod
    def migrate(cls, schema: int, data: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"schema {schema} is not supported (this gitxact reads schema {cls.SCHEMA})")

    @classmethod
    def model_validate(cls, data: Any) -> Meta:
        return cls(**fields.checked(fields.mapping(data, "meta", _FIELDS), _SPEC, "meta"))

    def model_dump(self, *, mode: str = "json") -> dict[str, Any]:
        return {"created": self.created, "created_by_version": self.created_by_version, "initialized": self.initialized}
