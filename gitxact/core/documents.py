"""The ``--json`` documents: one pydantic model per command, versioned.

Every document carries ``"schema": 1`` so consumers can detect a change of shape;
the field is named ``schema_version`` in Python because ``schema`` is taken on
``BaseModel``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gitxact.core.plain import SCHEMA


class Document(BaseModel):
    """Base of every JSON document printed on stdout."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    schema_version: int = Field(default=SCHEMA, serialization_alias="schema")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


class InitResult(Document):
    """``gitxact init --json``: the state folder, whether this call created it, the settings."""

    state_dir: str
    created: bool
    settings: dict[str, str | float | None]
