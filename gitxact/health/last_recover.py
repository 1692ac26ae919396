"""The record of the last ``gitxact recover`` run, which ``status`` shows and ``doctor`` verifies."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, Field

from gitxact.state.models import StateModel

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

RECOVER_FILE = "recover.json"
RECOVER_LOCK = "recover"


class LastRecover(BaseModel):
    at: float
    pid: int
    agent: str | None = None
    ok: bool
    actions: int
    problems: list[str] = Field(default_factory=list)


class RecoverState(StateModel):
    KIND: ClassVar[str] = "recover"
    SCHEMA: ClassVar[int] = 1

    last: LastRecover | None = None


def last_recover(repo: Repo) -> LastRecover | None:
    """The last recover's summary (read without a lock)."""
    path = repo.state_dir / "state" / RECOVER_FILE
    if not path.exists() and not path.with_name(RECOVER_FILE + ".bak").exists():
        return None
    return repo.state_file(RECOVER_FILE, RecoverState).load().last
