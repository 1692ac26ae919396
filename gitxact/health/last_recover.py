"""The record of the last ``gitxact recover`` run, which ``status`` shows and ``doctor`` verifies."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from gitxact.state.record import (
    FLAG,
    INTEGER,
    NUMBER,
    OPTIONAL_STRING,
    STRINGS,
    Record,
    field,
    optional,
    record,
)

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

RECOVER_FILE = "recover.json"
RECOVER_LOCK = "recover"


class LastRecover(Record):
    """When the last recover ran, by whom, and what it did (``status --json``'s ``last_recover``,
    in this order)."""

    at: float = field(NUMBER)
    pid: int = field(INTEGER)
    agent: str | None = field(OPTIONAL_STRING, default=None)
    ok: bool = field(FLAG)
    actions: int = field(INTEGER)
    problems: list[str] = field(STRINGS, default=[])


class RecoverState(Record):
    """``recover.json``: exactly ``last`` (unknown fields of ``last`` are ignored)."""

    KIND: ClassVar[str] = "recover"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    last: LastRecover | None = field(optional(record(LastRecover)), default=None)


def last_recover(repo: Repo) -> LastRecover | None:
    """The last recover's summary (read without a lock)."""
    path = repo.state_dir / "state" / RECOVER_FILE
    if not path.exists() and not path.with_name(RECOVER_FILE + ".bak").exists():
        return None
    return repo.state_file(RECOVER_FILE, RecoverState).load().last
