"""What gitxact accepts from outside its process: bounded text, no NUL byte, bounded nesting.

Arguments reach git, a shell, file names and PostgreSQL. There a NUL byte is
``ValueError: embedded null byte`` (or cuts a C string short, and PostgreSQL's ``jsonb``
cannot hold ``\\u0000`` at all), a string over Linux's per-argument limit
(``MAX_ARG_STRLEN``, 128 KiB) is ``E2BIG`` from exec, and JSON nested deeper than Python's
recursion limit is a ``RecursionError`` in ``json``, pydantic or the MCP SDK: each one an
"internal error". So they are refused at the edge (the CLI's JSON arguments, Claude Code's
hook payloads, the MCP server's tool arguments) as a usage error (exit 2) that names the
argument, before anything runs.
"""

from __future__ import annotations

import json
from typing import Any

from gitxact.errors import UsageError

#: One string argument (a name, a path, a command line): half of ``MAX_ARG_STRLEN``.
MAX_TEXT_BYTES = 64 * 1024
#: JSON nesting, arrays and objects: deep enough for any real document, far below the
#: recursion limits of ``json`` (~1000) and of pydantic's parser (200).
MAX_DEPTH = 64
INVALID_ARGUMENT = "invalid_argument"
_NUL_HINT = "a NUL byte cannot reach git, a file name, a command or PostgreSQL's jsonb"


class InvalidInputError(UsageError):
    """An argument holds a NUL byte, is too long or is nested too deep (exit 2)."""

    reason = INVALID_ARGUMENT


def check_text(value: str, what: str, *, limit: int = MAX_TEXT_BYTES) -> str:
    """*value*, if it holds no NUL byte and is at most *limit* bytes of UTF-8."""
    if "\0" in value:
        raise InvalidInputError(f"{what} holds a NUL byte", hint=_NUL_HINT)
    if len(value) > limit // 4 and len(value.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidInputError(f"{what} is longer than {limit} bytes")
    return value


def check_json(value: Any, what: str) -> Any:
    """*value* (parsed JSON), if it nests at most :data:`MAX_DEPTH` deep and no string or key holds NUL.

    Walked with a stack, not recursion: the point is to survive what recursion cannot.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\0" in item:
                raise InvalidInputError(f"{what} holds a NUL byte", hint=_NUL_HINT)
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                raise InvalidInputError(f"{what} is nested deeper than {MAX_DEPTH} levels")
            children = list(item.items()) if isinstance(item, dict) else [(None, child) for child in item]
            for key, child in children:
                if isinstance(key, str) and "\0" in key:
                    raise InvalidInputError(f"{what} holds a NUL byte in a key")
                stack.append((child, depth + 1))
    return value


def nesting(text: str, limit: int = MAX_DEPTH) -> int:
    """How deep JSON *text* nests, counted without parsing it; stops once past *limit*."""
    if text.count("[") + text.count("{") <= limit:
        return 0  # cannot be deeper than its number of openings: the usual case, no scan
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif char in "]}":
            depth -= 1
    return deepest


def loads(text: str, what: str) -> Any:
    """Parse JSON *text* given from outside; too deep is refused before parsing, NUL after.

    Raises :class:`InvalidInputError` for those, ``ValueError`` for text that is not JSON.
    """
    if nesting(text) > MAX_DEPTH:
        raise InvalidInputError(f"{what} is nested deeper than {MAX_DEPTH} levels")
    return check_json(json.loads(text), what)
