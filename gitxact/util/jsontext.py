"""JSON for the paths every ``gx`` call takes, through CPython's C accelerator, without ``re``.

``import json`` imports ``re`` three times over (decoder, scanner, encoder), and ``re``
imports ``enum``, on every ``gx commit`` that only reads a lock record or two.
Start-up: saves over 0.1 S on gx commit and the hooks (docs/benchmark.md, "Start-up tricks").
The parsing and the writing are done in C anyway (``_json``); only the Python wrappers
around them need ``re`` (for whitespace and, on the pure-Python fallback, numbers). So
:func:`loads` and :func:`dumps` call ``_json`` with the arguments ``json`` itself passes
it, and hand over to ``json`` where ``_json`` is missing (another Python) or refuses
those arguments (a later CPython that changed them).

The text is the same, byte for byte, as ``json.dumps`` with the same options
(tests/test_jsontext.py compares them on generated documents): state files' checksums
are computed over it (:mod:`gitxact.state.checksums`), so a difference would be a
corrupt file. Errors are ``ValueError`` (``json.JSONDecodeError`` for bad text, as
``json.loads`` raises); the error path may import ``json``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - not CPython: the json module does it all
    _json = None  # type: ignore[assignment]

_SPACE = " \t\n\r"  # JSON's whitespace, exactly what json.decoder's WHITESPACE matches
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


class _Context:
    """The attributes ``_json.make_scanner`` reads, as ``json.JSONDecoder()`` sets them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float({"-Infinity": "-inf", "Infinity": "inf", "NaN": "nan"}[name])


_scan: Callable[[str, int], tuple[Any, int]] | None = None


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``."""
    global _scan  # noqa: PLW0603 - made once per process, on first use
    if isinstance(text, str):
        pass
    elif _json is None or text[:3].startswith(_BOMS) or 0 in text[:4]:
        import json  # bytes in UTF-16/32 or with a BOM: json detects those

        return json.loads(text)
    else:
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"not UTF-8 JSON: {exc}") from None
    if _json is None:  # pragma: no cover - not CPython
        import json

        return json.loads(text)
    if _scan is None:
        _scan = _json.make_scanner(_Context())  # type: ignore[arg-type]  # duck-typed: it reads attributes
    start = _skip(text, 0)
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise _error("Expecting value", text, stop.value) from None
    end = _skip(text, end)
    if end != len(text):
        raise _error("Extra data", text, end)
    return value


def _skip(text: str, at: int) -> int:
    size = len(text)
    while at < size and text[at] in _SPACE:
        at += 1
    return at


def _error(message: str, text: str, at: int) -> ValueError:
    from json import JSONDecodeError  # the error path only

    return JSONDecodeError(message, text, at)


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(
    value: object,
    *,
    sort_keys: bool = False,
    compact: bool = True,
    ensure_ascii: bool = True,
    allow_nan: bool = True,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """``json.dumps(value, ...)``; *compact* means ``separators=(",", ":")``."""
    items, keys = (",", ":") if compact else (", ", ": ")
    if _json is not None:
        quote = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
        if value.__class__ is str:
            return quote(value)
        try:
            encode = _json.make_encoder({}, default or _refuse, quote, None, keys, items, sort_keys, False, allow_nan)
        except TypeError:  # pragma: no cover - a CPython whose encoder takes other arguments
            pass
        else:
            return "".join(encode(value, 0))
    import json  # pragma: no cover - see above

    return json.dumps(  # pragma: no cover
        value,
        sort_keys=sort_keys,
        separators=(items, keys),
        ensure_ascii=ensure_ascii,
        allow_nan=allow_nan,
        default=default,
    )
