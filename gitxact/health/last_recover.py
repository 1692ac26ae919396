"""The record of the last ``gitxact recover`` run, which ``status`` shows and ``doctor`` verifies.

Validated by hand (:mod:`gitxact.state.fields`), not by pydantic: ``status`` reads it, and
must not pay nine interpreter start-ups for pydantic's import. The rules are the pydantic
models' ones: ``recover.json`` holds exactly ``last``; unknown fields of ``last`` are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from gitxact.core.plain import PlainModel
from gitxact.state import fields

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

RECOVER_FILE = "recover.json"
RECOVER_LOCK = "recover"


class LastRecover(PlainModel):
    """When the last recover ran, by whom, and what it did (``status --json``'s ``last_recover``)."""

    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("at", "pid", "agent", "ok", "actions", "problems")
    __slots__ = FIELDS

    def __init__(
        self,
        *,
        at: float,
        pid: int,
        agent: str | None = None,
        ok: bool,
        actions: int,
        problems: list[str] | None = None,
    ) -> None:
        self.at = float(at)
        self.pid = pid
        self.agent = agent
        self.ok = ok
        self.actions = actions
        self.problems: list[str] = [] if problems is None else problems

    @classmethod
    def model_validate(cls, data: Any) -> LastRecover:
        return cls(**fields.checked(data, _SPEC, "last"))


_SPEC: fields.Spec = (
    ("at", fields.NUMBER, fields.REQUIRED),
    ("pid", fields.INTEGER, fields.REQUIRED),
    ("agent", fields.OPTIONAL_STRING, None),
    ("ok", fields.FLAG, fields.REQUIRED),
    ("actions", fields.INTEGER, fields.REQUIRED),
    ("problems", fields.STRINGS, []),
)


class RecoverState:
    KIND: ClassVar[str] = "recover"
    SCHEMA: ClassVar[int] = 1

    __slots__ = ("last",)

    def __init__(self, *, last: LastRecover | None = None) -> None:
        self.last = last

    @classmethod
    def migrate(cls, schema: int, data: dict[str, Any]) -> dict[str, Any]:
        raise ValueError(f"schema {schema} is not supported (this gitxact reads schema {cls.SCHEMA})")

    @classmethod
    def model_validate(cls, data: Any) -> RecoverState:
        last = fields.mapping(data, "recover.json", frozenset({"last"})).get("last")
        try:
            return cls(last=None if last is None else LastRecover.model_validate(last))
        except ValueError as exc:
            raise ValueError(f"last.{exc}") from None

    def model_dump(self, *, mode: str = "json") -> dict[str, Any]:
        return {"last": None if self.last is None else self.last.to_dict()}


def last_recover(repo: Repo) -> LastRecover | None:
    """The last recover's summary (read without a lock)."""
    path = repo.state_dir / "state" / RECOVER_FILE
    if not path.exists() and not path.with_name(RECOVER_FILE + ".bak").exists():
        return None
    return repo.state_file(RECOVER_FILE, RecoverState).load().last
