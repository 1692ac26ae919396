"""Checks for state models validated by hand (the leases', ``meta``'s, ``recover``'s).

Those models are read by commands that must not import pydantic (several bare interpreter
start-ups: issue 14; see :mod:`gitxact.core.plain`). Each model's ``model_validate`` lists its fields
with their JSON types and defaults and calls :func:`checked`; a failure is a ``ValueError``
naming the field, which the state store reports as "does not validate" (and falls back to
the backup), as it did pydantic's. The types are strict JSON ones (``true`` is no number,
``"5"`` no integer): gitxact writes exactly these, so only a damaged or forged file differs.
One loop over a table, not a call per field: ``leases.json`` at 100 leases is read inside
the repository lock's hold, and must not take longer than pydantic's compiled validator.
"""

from __future__ import annotations

import math
from typing import Any

#: The default of a field that must be present.
REQUIRED: Any = object()

STRING = (str,)
OPTIONAL_STRING = (str, type(None))
INTEGER = (int,)  # exact types: a bool is no integer here
OPTIONAL_INTEGER = (int, type(None))
NUMBER = (float, int)  # given back as a finite float, as pydantic's ``float`` fields were
FLAG = (bool,)
STRINGS = (list,)  # a list of strings
INTEGERS = (list, tuple)  # a list of integers (a tuple only from code: JSON gives lists)

_NAMES = {
    STRING: "a string",
    OPTIONAL_STRING: "a string or null",
    INTEGER: "an integer",
    OPTIONAL_INTEGER: "an integer or null",
    NUMBER: "a number",
    FLAG: "true or false",
    STRINGS: "a list of strings",
    INTEGERS: "a list of integers",
}

Spec = tuple[tuple[str, tuple[type, ...], Any], ...]


def mapping(data: Any, what: str, known: frozenset[str] | None = None) -> dict[str, Any]:
    """*data* as an object; with *known*, one with no other field (pydantic's ``extra="forbid"``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be an object")  # noqa: TRY004 - the store's "does not validate"
    if known is not None and not data.keys() <= known:
        raise ValueError(f"{what} has unknown field(s) {sorted(data.keys() - known)!r}")
    return data


def checked(data: Any, spec: Spec, what: str) -> dict[str, Any]:
    """The fields of *spec* (name, JSON types, default or :data:`REQUIRED`) read from the
    object *data*, each of its type; fields *spec* does not name are ignored."""
    record = mapping(data, what)
    found: dict[str, Any] = {}
    for name, types, default in spec:
        value: Any = record.get(name, default)
        if type(value) not in types:
            if value is REQUIRED:
                raise ValueError(f"{name}: field required")
            raise ValueError(f"{name}: must be {_NAMES[types]}, not {value!r}")
        if types is NUMBER:
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, not {value!r}")
        elif types is STRINGS:
            if not all(type(item) is str for item in value):
                raise ValueError(f"{name}: must be a list of strings, not {value!r}")
            value = list(value)  # never the caller's default, nor the parsed file's list
        elif types is INTEGERS:
            if not all(type(item) is int for item in value):
                raise ValueError(f"{name}: must be a list of integers, not {value!r}")
            value = list(value)
        found[name] = value
    return found
