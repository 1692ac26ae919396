"""The pydantic base of the state models that need pydantic's validation.

Kept apart from :mod:`gitxact.state.store` so that reading and writing a state file
does not import pydantic (several bare interpreter starts, issue 14): the store
works with any class that has the few members :class:`~gitxact.state.store.Persisted`
names, and the tracker (a hot command) implements them by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class StateModel(BaseModel):
    """Base of every pydantic model persisted as a state file."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)

    KIND: ClassVar[str] = "state"
    SCHEMA: ClassVar[int] = 1

    @classmethod
    def migrate(cls, schema: int, data: dict[str, Any]) -> dict[str, Any]:
        """Upgrade *data* written with an older *schema*; models override when they evolve."""
        raise ValueError(f"schema {schema} is not supported (this gitxact reads schema {cls.SCHEMA})")
