"""One kind of record for every state file (issue 26), and the documents held to its tables.

The state-file models are found by scanning the package (every class handed to
``StateFile`` / ``state_file`` / ``store.file`` or returned by ``health.state_files``), not
by a hand list, so a new state file with a model of its own kind fails here. Every record
(state models and the records nested in them, reached through their tables) then goes
through a round trip and a forgery of each field.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import gitxact
from gitxact.state.checksums import canonical_json
from gitxact.state.record import JSON, REQUIRED, FieldError, Kind, Record
from gitxact.util import jsontext

PACKAGE = Path(gitxact.__file__).parent
SOURCES = {path: path.read_text(encoding="utf-8") for path in sorted(PACKAGE.rglob("*.py"))}

#: A model handed to the store: ``StateFile(path, Model)``, ``repo.state_file(name, Model)``,
#: ``StateFile[Model]``, and the models ``health.state_files.model_for`` returns.
_USES = (
    re.compile(r"\bStateFile\(\s*[^,()]+(?:\([^()]*\))?\s*,\s*(\w+)\s*\)"),
    re.compile(r"\bstate_file\(\s*[^,()]+(?:\([^()]*\))?\s*,\s*(\w+)\s*\)"),
    re.compile(r"\bStateFile\[(\w+)\]"),
)


def _class(name: str) -> type:
    homes = [path for path, text in SOURCES.items() if re.search(rf"^class {name}\b", text, re.MULTILINE)]
    assert len(homes) == 1, (name, homes)
    module = ".".join(homes[0].relative_to(PACKAGE.parent).with_suffix("").parts)
    found: type = getattr(importlib.import_module(module), name)
    return found


def state_models() -> dict[str, type]:
    names = {match for text in SOURCES.values() for pattern in _USES for match in pattern.findall(text)}
    names -= {"M", "model"}  # the store's own type variable and parameter
    from gitxact.health import state_files

    found = {name: _class(name) for name in sorted(names)}
    for pattern in state_files.PATTERNS:
        model = state_files.model_for(pattern.replace("*", "x"))
        assert model is not None, pattern
        found[model.__name__] = model
    return found


def records() -> list[type[Record]]:
    """Every record reachable from the state models through their tables."""
    seen: dict[type[Record], None] = {}
    todo: list[type] = list(state_models().values())
    while todo:
        cls = todo.pop()
        if not (isinstance(cls, type) and issubclass(cls, Record)) or cls in seen:
            continue
        seen[cls] = None
        for one in cls.FIELDS:
            kind = one.kind
            while isinstance(kind.of, Kind):
                kind = kind.of
            if isinstance(kind.of, type):
                todo.append(kind.of)
    return sorted(seen, key=lambda cls: cls.__name__)


def test_every_state_file_model_is_a_record() -> None:
    models = state_models()
    # The files of today, at least (more is fine: each must be a Record too).
    assert {"Meta", "LeaseState", "TrackerState", "TrustState", "RecoverState", "Journal", "Landing"} <= set(models)
    assert {"LandedState"} <= set(models)
    for name, model in models.items():
        assert issubclass(model, Record), f"{name} holds a state file: make it a gitxact.state.record.Record"
        assert model.KIND, f"{name} names no KIND"
        assert model.EXTRA_FORBIDDEN, f"{name}: a state file's top level refuses fields it does not know"
    kinds = [model.KIND for model in models.values()]
    assert len(kinds) == len(set(kinds)), kinds


def test_the_hand_written_validators_are_gone() -> None:
    assert not (PACKAGE / "state" / "fields.py").exists()
    assert not (PACKAGE / "state" / "models.py").exists()
    for path, text in SOURCES.items():
        where = path.relative_to(PACKAGE).as_posix()
        if where == "state/record.py":
            continue
        assert "def model_validate(" not in text, f"{where}: a record's check is its field table"
        assert "StateModel" not in text, where
        assert not re.search(r"^\s+KIND: ClassVar\[str\] = ", text, re.MULTILINE) or "(Record):" in text, where


def sample(kind: Kind, depth: int = 0) -> Any:
    """A valid value of *kind* (never ``None`` where a value fits: every nested part is exercised)."""
    label = kind.label
    if isinstance(kind.of, Kind):  # optional
        return sample(kind.of, depth)
    if isinstance(kind.of, type):
        one = build(kind.of, depth + 1)
        return [one] if list in kind.types else {"k": one} if kind.types == (dict,) else one
    if isinstance(kind.of, tuple):
        return kind.of[-1]
    if isinstance(kind.of, int):
        return kind.of + 1
    if kind is JSON:
        return {"a": [1, "two", None]}
    return {
        "a string": "text",
        "an integer": 7,
        "a number": 1.5,
        "true or false": True,
        "a list of strings": ["x", "y"],
        "a list of integers": [1, 2],
        "an object of strings": {"a": "b"},
    }[label.removesuffix(" or null")]


def build(cls: type[Record], depth: int = 0) -> Record:
    return cls(**{one.name: sample(one.kind, depth) for one in cls.FIELDS})


def wrong(kind: Kind) -> Any:
    """A JSON value *kind* refuses."""
    if kind is JSON:
        return REQUIRED  # any JSON value fits; only a missing one is refused
    return "5" if str not in kind.types else 5


@pytest.mark.parametrize("cls", records(), ids=lambda cls: cls.__name__)
def test_a_record_survives_a_round_trip_and_refuses_forgeries(cls: type[Record]) -> None:
    value = build(cls)
    dumped = value.model_dump(mode="json")
    assert list(dumped) == [one.name for one in cls.FIELDS]
    read = cls.model_validate(jsontext.loads(canonical_json(dumped)))
    assert read == value
    assert read.model_dump(mode="json") == dumped
    assert read.model_copy(deep=True) == value
    for one in cls.FIELDS:
        forged = dict(dumped)
        bad = wrong(one.kind)
        if bad is REQUIRED:
            del forged[one.name]
        else:
            forged[one.name] = bad
        if bad is REQUIRED and one.default is not REQUIRED:
            continue
        with pytest.raises(FieldError) as caught:
            cls.model_validate(forged)
        assert str(caught.value).startswith(f"{one.name}: "), str(caught.value)
    extra = {**dumped, "unknown_field": 1}
    if cls.EXTRA_FORBIDDEN:
        with pytest.raises(ValueError, match="unknown_field"):
            cls.model_validate(extra)
    else:
        assert cls.model_validate(extra) == value  # a newer gitxact's field, ignored


def test_a_nested_error_names_the_whole_path() -> None:
    from gitxact.land.records import Landing

    landing = build(Landing)
    data = landing.model_dump(mode="json")
    data["requests"][0]["owner"]["pid"] = True
    with pytest.raises(FieldError, match=r"^requests\.0\.owner\.pid: must be an integer, not True$"):
        Landing.model_validate(data)


def test_a_mutable_default_is_never_shared() -> None:
    from gitxact.land.records import Outcome

    first, second = Outcome(), Outcome()
    first.commits.append("abc")
    first.landed_as["a"] = "b"
    assert second.commits == []
    assert second.landed_as == {}
    assert Outcome.model_validate({}).commits == []


def test_a_record_refuses_an_unknown_keyword_and_a_wrong_type_in_code() -> None:
    from gitxact.tx.journal import Owner

    with pytest.raises(TypeError, match="pidd"):
        Owner(pidd=1, host="h", since=0.0)  # type: ignore[call-arg]
    with pytest.raises(FieldError, match=r"^pid: "):
        Owner(pid="1", host="h", since=0.0)  # type: ignore[arg-type]


# -- the documents that mirror a record -------------------------------------------------------------


def _kind_type(kind: Kind) -> str:
    """The JSON type of *kind*, as :func:`_schema_type` spells a pydantic field's."""
    if isinstance(kind.of, Kind):
        return _kind_type(kind.of) + "|null"
    if isinstance(kind.of, tuple):  # one_of: a string in JSON
        return "string"
    if kind is JSON:
        return "any"
    return {
        "a string": "string",
        "a string or null": "string|null",
        "an integer": "integer",
        "an integer or null": "integer|null",
        "a number": "number",
        "true or false": "boolean",
        "a list of strings": "array<string>",
        "a list of integers": "array<integer>",
        "an object of strings": "object<string>",
    }.get(kind.label, "integer" if isinstance(kind.of, int) else kind.label)


def _schema_type(schema: dict[str, Any]) -> str:
    if "anyOf" in schema:
        return "|".join(_schema_type(part) for part in schema["anyOf"])
    kind = schema.get("type")
    if kind is None:
        return "any"
    if kind == "array":
        return f"array<{_schema_type(schema['items'])}>"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object<{_schema_type(schema['additionalProperties'])}>"
    return str(kind)


def _mirrors() -> list[tuple[type[BaseModel], type[Record], set[str]]]:
    from gitxact.backends.base import TrackerEntry
    from gitxact.cli.tracker_docs import EntryDoc
    from gitxact.land.records import Outcome, Request
    from gitxact.land.results import LandDoc, RequestInfo
    from gitxact.mcp import results as mcp
    from gitxact.tx.journal import SavepointRecord, Step, TddState, TxRecord
    from gitxact.tx.results import SavepointDoc, StepDoc, TddDoc, TxInfo

    return [
        (LandDoc, Outcome, {f.name for f in Outcome.FIELDS} - {"code"}),
        (LandDoc, Request, {"state", "branch", "tip", "target", "remote", "strategy"}),
        (RequestInfo, Request, {"id", "seq", "state", "branch", "tip", "filed"}),
        (TxInfo, TxRecord, {"tx_id", "name", "kind", "worktree_id", "worktree", "namespace", "agent", "created"}),
        (SavepointDoc, SavepointRecord, {"name", "ref", "snapshot_ref", "created"}),
        (TddDoc, TddState, {"step", "start", "commits", "passing"}),
        (StepDoc, Step, {"op", "phase", "failed"}),
        (EntryDoc, TrackerEntry, {"value", "version", "updated", "by"}),
        (mcp.TrackerEntry, TrackerEntry, {"value", "version", "updated", "by"}),
        (mcp.TxState, TxRecord, {"tx_id", "name"}),
    ]


@pytest.mark.parametrize(
    ("doc", "record", "mirrored"), _mirrors(), ids=lambda item: getattr(item, "__name__", "fields")
)
def test_a_document_agrees_with_the_record_it_mirrors(
    doc: type[BaseModel], record: type[Record], mirrored: set[str]
) -> None:
    """A document field named as a field of the record it is built from has its JSON type: a
    renamed or retyped record field fails here, not in a reader of ``--json``."""
    shared = set(doc.model_fields) & {f.name for f in record.FIELDS}
    assert mirrored <= shared, f"{doc.__name__} no longer mirrors {record.__name__}'s {sorted(mirrored - shared)}"
    properties = doc.model_json_schema(mode="serialization")["properties"]
    kinds = {f.name: f.kind for f in record.FIELDS}
    for name in sorted(mirrored):
        assert _schema_type(properties[name]) == _kind_type(kinds[name]), (doc.__name__, record.__name__, name)
