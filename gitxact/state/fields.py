"""Checks for state models validated by hand (the tracker's, the leases', ``meta``'s, ``recover``'s).

Those models are read by commands that must not import pydantic (350 M instructions, nine
bare interpreter start-ups: issue 14). Each model's ``model_validate`` reads its fields
with these, and every failure is a ``ValueError`` naming the field, which the state store
reports as "does not validate" (and falls back to the backup), as it did pydantic's. The
rules are strict JSON types: a number where a number belongs (``true`` is no number), a
string where a string belongs; gitxact writes exactly these, so only a damaged or forged
file can differ.
"""

from __future__ import annotations

import math
from typing import Any

MISSING: Any = object()


def mapping(data: Any, what: str, known: frozenset[str] | None = None) -> dict[str, Any]:
    """*data* as an object; with *known*, one with no other field (pydantic's ``extra="forbid"``)."""
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be an object")  # noqa: TRY004 - the store's "does not validate"
    if known is not None and not data.keys() <= known:
        raise ValueError(f"{what} has unknown field(s) {sorted(data.keys() - known)!r}")
    return data


def _get(data: dict[str, Any], name: str, default: Any) -> Any:
    if name in data:
        return data[name]
    if default is MISSING:
        raise ValueError(f"{name}: field required")
    return default


def text(data: dict[str, Any], name: str, default: Any = MISSING) -> Any:
    """A string (or *default*, which may be ``None``, when absent); ``null`` only if *default* is ``None``."""
    value = _get(data, name, default)
    if isinstance(value, str) or (value is None and default is None):
        return value
    raise ValueError(f"{name}: must be a string, not {value!r}")


def integer(data: dict[str, Any], name: str, default: Any = MISSING) -> Any:
    value = _get(data, name, default)
    if (isinstance(value, int) and not isinstance(value, bool)) or (value is None and default is None):
        return value
    raise ValueError(f"{name}: must be an integer, not {value!r}")


def number(data: dict[str, Any], name: str, default: Any = MISSING) -> Any:
    """A finite number, as a float (as pydantic's ``float`` fields gave it)."""
    value = _get(data, name, default)
    if value is None and default is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number, not {value!r}")
    return float(value)


def flag(data: dict[str, Any], name: str, default: Any = MISSING) -> bool:
    value = _get(data, name, default)
    if isinstance(value, bool):
        return value
    raise ValueError(f"{name}: must be true or false, not {value!r}")


def choice(data: dict[str, Any], name: str, allowed: tuple[str, ...], default: Any = MISSING) -> str:
    value = _get(data, name, default)
    if value in allowed and isinstance(value, str):
        return value
    raise ValueError(f"{name}: must be one of {', '.join(allowed)}, not {value!r}")


def texts(data: dict[str, Any], name: str, default: Any = MISSING) -> list[str]:
    value = _get(data, name, default)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ValueError(f"{name}: must be a list of strings, not {value!r}")
