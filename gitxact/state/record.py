"""The one kind of record of gitxact's state files: slots, a field table, one check.

Every model a state file holds (``meta.json``, the leases, the tracker, the journals, the
landing queue, ...) and every record nested in one derives from :class:`Record` and lists
its fields once, in the class body::

    class Owner(Record):
        pid: int = field(INTEGER)
        host: str = field(STRING)
        start: int | None = field(OPTIONAL_INTEGER, default=None)

The annotation is for mypy (:func:`typing.dataclass_transform` gives it the keyword
``__init__``); the *kind* is the field's JSON type, checked at run time by one loop over
the class's table (:func:`_fill`), for a file read and a record built in code alike. A
failure is a :class:`FieldError` (a ``ValueError``) naming the field's path
(``leases.alice.owner_pid: must be an integer, not '5'``), which the state store reports
as "does not validate" and answers by falling back to the backup.

The types are strict JSON ones (``true`` is no number, ``"5"`` no integer): gitxact writes
exactly these, so only a damaged or forged file differs. A class with
``EXTRA_FORBIDDEN = True`` refuses fields it does not know (a top-level state model: what
would a newer gitxact's field mean here?); the others ignore them, so a newer gitxact's
additions to a lease survive this one's listing.

Not pydantic, not ``dataclasses``: ``status``, ``worktree list`` and ``tracker incr`` read
these files, and importing either costs more than their work (``dataclasses`` pulls
``inspect``); this module imports only ``math``. pydantic stays for the ``--json`` documents; those that
mirror a record are held to its table by tests/test_one_record_kind.py.
Start-up: saves over 0.1 S on status (docs/benchmark.md, "Start-up tricks").
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, ClassVar, Self, dataclass_transform
else:

    def dataclass_transform(**_: object) -> object:
        return lambda cls: cls


#: The default of a field that must be present.
REQUIRED: Any = object()
_NONE = type(None)


class FieldError(ValueError):
    """A value that does not fit its field; ``str()`` names the path (``requests.2.owner.pid: ...``)."""

    def __init__(self, problem: str, path: tuple[str, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path

    def under(self, name: object) -> FieldError:
        return FieldError(self.problem, (str(name), *self.path))

    def __str__(self) -> str:
        return f"{'.'.join(self.path)}: {self.problem}" if self.path else self.problem


class Kind:
    """A field's JSON type: the exact Python types it may arrive as, how to say it, and
    (when the value needs more than a type check) a *convert* that checks and copies it, and
    a *dump* that gives it back as JSON. *of* is what a composite kind is made of (the inner
    kind of :func:`optional`, the record class of :func:`record`, :func:`list_of` and
    :func:`dict_of`, the values of :func:`one_of`), for the tests that compare a record's
    table with the documents that mirror it."""

    __slots__ = ("convert", "dump", "label", "of", "types")

    def __init__(
        self,
        types: tuple[type, ...],
        label: str,
        convert: Callable[[Any], Any] | None = None,
        dump: Callable[[Any], Any] | None = None,
        of: object = None,
    ) -> None:
        self.types = types
        self.label = label
        self.convert = convert
        self.dump = dump
        self.of = of

    def __repr__(self) -> str:
        return f"Kind({self.label})"


def _finite(value: float) -> float:
    value = float(value)  # given back as a float, as pydantic's ``float`` fields were
    if not math.isfinite(value):
        raise FieldError(f"must be a finite number, not {value!r}")
    return value


def _all_of(item_type: type, label: str) -> Callable[[Any], list[Any]]:
    def convert(value: Any) -> list[Any]:
        for item in value:
            if type(item) is not item_type:
                raise FieldError(f"must be {label}, not {value!r}")
        return list(value)  # never the caller's list, nor the parsed file's

    return convert


def _string_map(value: dict[Any, Any]) -> dict[str, str]:
    for key, item in value.items():
        if type(item) is not str:
            raise FieldError(f"must be a string, not {item!r}", (str(key),))
    return dict(value)


STRING = Kind((str,), "a string")
OPTIONAL_STRING = Kind((str, _NONE), "a string or null")
INTEGER = Kind((int,), "an integer")  # exact types: a bool is no integer here
OPTIONAL_INTEGER = Kind((int, _NONE), "an integer or null")
NUMBER = Kind((float, int), "a number", _finite)
FLAG = Kind((bool,), "true or false")
#: Lists arrive as lists from a file; a tuple only from code.
STRINGS = Kind((list, tuple), "a list of strings", _all_of(str, "a list of strings"), list)
INTEGERS = Kind((list, tuple), "a list of integers", _all_of(int, "a list of integers"), list)
STRING_MAP = Kind((dict,), "an object of strings", _string_map, dict)


def _json_copy(value: Any) -> Any:
    """*value* with its objects and lists copied: never the caller's, nor the parsed file's
    (which the store hands to every load of the same bytes)."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    return value


#: Any JSON value (the tracker's values; their own limits are checked where they are set).
JSON = Kind((dict, list, str, int, float, bool, _NONE), "a JSON value", _json_copy)


def optional(kind: Kind) -> Kind:
    """*kind*, or ``null``."""
    convert, dump = kind.convert, kind.dump
    return Kind(
        (*kind.types, _NONE),
        f"{kind.label} or null",
        None if convert is None else lambda value: None if value is None else convert(value),
        None if dump is None else lambda value: None if value is None else dump(value),
        kind,
    )


OPTIONAL_NUMBER = optional(NUMBER)


def one_of(*values: str) -> Kind:
    """A string among *values* (a ``Literal`` of the annotation)."""
    allowed = frozenset(values)
    label = "one of " + ", ".join(values)

    def convert(value: str) -> str:
        if value not in allowed:
            raise FieldError(f"must be {label}, not {value!r}")
        return value

    return Kind((str,), label, convert, of=values)


def at_least(low: int) -> Kind:
    """An integer no smaller than *low*."""

    def convert(value: int) -> int:
        if value < low:
            raise FieldError(f"must be an integer >= {low}, not {value!r}")
        return value

    return Kind((int,), f"an integer >= {low}", convert, of=low)


def record(cls: type[Record]) -> Kind:
    """A nested record: an object in the file, an instance (kept as it is) or an object in code."""

    def convert(value: Any) -> Record:
        return value if type(value) is cls else cls.model_validate(value)

    return Kind((dict, cls), f"an object ({cls.__name__})", convert, _dump, cls)


def list_of(cls: type[Record]) -> Kind:
    """A list of records."""

    def convert(value: Any) -> list[Record]:
        found = []
        for index, item in enumerate(value):
            if type(item) is cls:
                found.append(item)
                continue
            try:
                found.append(cls.model_validate(item))
            except FieldError as exc:
                raise exc.under(index) from None
        return found

    return Kind((list, tuple), f"a list of {cls.__name__}", convert, _dump_list, cls)


def dict_of(cls: type[Record]) -> Kind:
    """An object whose values are records (keyed by agent, SHA-256, branch, ...)."""

    def convert(value: dict[Any, Any]) -> dict[str, Record]:
        found = {}
        for key, item in value.items():
            if type(item) is cls:
                found[key] = item
                continue
            try:
                found[key] = cls.model_validate(item)
            except FieldError as exc:
                raise exc.under(key) from None
        return found

    return Kind((dict,), f"an object of {cls.__name__}", convert, _dump_dict, cls)


def _dump(value: Record) -> dict[str, Any]:
    return value.model_dump()


def _dump_list(value: list[Record]) -> list[dict[str, Any]]:
    return [item.model_dump() for item in value]


def _dump_dict(value: dict[str, Record]) -> dict[str, dict[str, Any]]:
    return {key: item.model_dump() for key, item in value.items()}


class Field:
    """One row of a record's table: its name, JSON kind and default (or :data:`REQUIRED`)."""

    __slots__ = ("default", "kind", "name")

    def __init__(self, kind: Kind, default: Any) -> None:
        self.name = ""
        self.kind = kind
        self.default = default

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.kind.label})"


def field(kind: Kind, *, default: Any = REQUIRED) -> Any:
    """Declare a field of *kind* (a list or object default is copied for each record)."""
    return Field(kind, default)


def _fill(new: Record, table: tuple[tuple[str, tuple[type, ...], Any, Any, Kind], ...], values: dict[str, Any]) -> None:
    """Set each field of *new* from *values*, checked: the one loop every record goes through.

    One pass over a table of plain tuples, a call only for the fields that need more than a
    type check: ``leases.json`` at 1,000 leases is read inside the repository lock's hold.
    """
    for name, types, default, convert, kind in table:
        value = values.get(name, default)
        if type(value) not in types:
            if value is REQUIRED:
                raise FieldError("field required", (name,))
            raise FieldError(f"must be {kind.label}, not {value!r}", (name,))
        if convert is not None:
            try:
                value = convert(value)
            except FieldError as exc:
                raise exc.under(name) from None
        setattr(new, name, value)


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
class _RecordType(type):
    """Builds a record class's table and ``__slots__`` from its :func:`field` declarations."""

    def __new__(mcs, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _RecordType:
        own: list[Field] = []
        for key, value in list(namespace.items()):
            if type(value) is Field:
                value.name = key
                own.append(value)
                del namespace[key]  # the slot takes the name
        for key, annotation in namespace.get("__annotations__", {}).items():
            if key not in {f.name for f in own} and not str(annotation).startswith(("ClassVar", "typing.ClassVar")):
                raise TypeError(f"{name}.{key}: a record's field is declared with field(KIND, ...)")
        inherited: tuple[Field, ...] = ()
        for base in bases:
            inherited = getattr(base, "FIELDS", inherited)
        namespace["__slots__"] = (*namespace.get("__slots__", ()), *(f.name for f in own))
        cls = super().__new__(mcs, name, bases, namespace)
        fields = (*inherited, *own)
        cls.FIELDS = fields  # type: ignore[attr-defined]
        cls._NAMES = frozenset(f.name for f in fields)  # type: ignore[attr-defined]
        cls._TABLE = tuple((f.name, f.kind.types, f.default, f.kind.convert, f.kind) for f in fields)  # type: ignore[attr-defined]
        cls._DUMP = tuple((f.name, f.kind.dump) for f in fields)  # type: ignore[attr-defined]
        return cls


class Record(metaclass=_RecordType):
    """Base of every state model and of every record nested in one (see the module's docstring)."""

    __slots__ = ()

    #: The envelope's ``kind`` and ``schema`` (a top-level state model sets them).
    KIND: ClassVar[str] = ""
    SCHEMA: ClassVar[int] = 1
    #: Whether a field this class does not know makes the object invalid.
    EXTRA_FORBIDDEN: ClassVar[bool] = False
    FIELDS: ClassVar[tuple[Field, ...]]
    _NAMES: ClassVar[frozenset[str]]
    _TABLE: ClassVar[tuple[tuple[str, tuple[type, ...], Any, Any, Kind], ...]]
    _DUMP: ClassVar[tuple[tuple[str, Callable[[Any], Any] | None], ...]]

    def __init__(self, **values: Any) -> None:
        if not values.keys() <= self._NAMES:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(values.keys() - self._NAMES)!r}")
        _fill(self, self._TABLE, values)

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """A record from parsed JSON, checked (:class:`FieldError` names what is wrong)."""
        if type(data) is not dict:
            raise FieldError(f"must be an object, not {type(data).__name__}")
        if cls.EXTRA_FORBIDDEN and not data.keys() <= cls._NAMES:
            raise FieldError(f"unknown field(s) {sorted(data.keys() - cls._NAMES)!r}")
        new = cls.__new__(cls)
        _fill(new, cls._TABLE, data)
        return new

    def model_dump(self, *, mode: str = "python", by_alias: bool = False) -> dict[str, Any]:
        """The fields as JSON, in the table's order (*mode* and *by_alias* as pydantic's, for
        callers that dump either kind of model: a record has only JSON values and no aliases)."""
        found: dict[str, Any] = {}
        for name, dump in self._DUMP:
            value = getattr(self, name)
            found[name] = value if dump is None else dump(value)
        return found

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with *update* applied, checked like a new record (*deep*: nested records copied too)."""
        if deep:
            return type(self)(**{**type(self).model_validate(self.model_dump())._values(), **(update or {})})
        return type(self)(**{**self._values(), **(update or {})})

    def _values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, _ in self._DUMP}

    @classmethod
    def migrate(cls, schema: int, data: dict[str, Any]) -> dict[str, Any]:
        """Upgrade *data* written with an older *schema*; models override when they evolve."""
        raise ValueError(f"schema {schema} is not supported (this gitxact reads schema {cls.SCHEMA})")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name, _ in self._DUMP)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name, _ in self._DUMP)
        return f"{type(self).__name__}({inner})"
