"""Read a gitxact state file without pydantic: for hooks and ``gx``, which must stay lean.

Same envelope rules as :class:`gitxact.state.store.StateFile` (format, kind, schema, the one
checksum of :mod:`gitxact.state.checksums`), the same ``.bak`` fallback, and with no good
generation a :class:`StateError` naming the file. It only reads: repairing is the
job of commands that hold the file's lock. Importing pydantic would cost more than
the git command a hook guards.
"""

from __future__ import annotations

import os

from gitxact.errors import StateError
from gitxact.state.checksums import checksum_of
from gitxact.util import jsontext
from gitxact.util.files import read_no_follow

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


#: The envelope marker of every state file.
FORMAT = "gitxact-state"


class Corrupt(Exception):
    """Why one generation of a state file cannot be used."""


def _read(path: str) -> bytes:
    try:
        return read_no_follow(path)
    except OSError as exc:
        raise Corrupt(f"cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise Corrupt(str(exc)) from exc


def open_envelope(raw: bytes, kind: str) -> dict[str, Any]:
    """The parsed envelope of one generation whose format, kind and checksum are right.

    The one definition of "a good generation", shared with :mod:`gitxact.state.store` (which
    then checks the header's types and validates ``data`` with its pydantic model).
    """
    if not raw.strip():
        raise Corrupt("is empty")
    try:
        envelope: Any = jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Corrupt(f"is not valid JSON ({exc.__class__.__name__})") from exc
    except RecursionError as exc:  # a forged file nested past the parser's recursion limit
        raise Corrupt("is nested too deep to be a gitxact state file") from exc
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise Corrupt("is not a gitxact state file")
    if envelope.get("kind") != kind:
        raise Corrupt(f"holds {envelope.get('kind')!r} data, expected {kind!r}")
    try:
        expected = checksum_of(envelope)
    except (TypeError, ValueError, RecursionError) as exc:
        raise Corrupt("holds values that cannot be checksummed") from exc
    if envelope.get("checksum") != expected:
        raise Corrupt("checksum mismatch (the file was changed or damaged outside gitxact)")
    return envelope


def decode(
    path: str, kind: str, schema: int, check: Callable[[dict[str, Any]], object] | None = None
) -> dict[str, Any]:
    """The verified ``data`` of one generation, or :class:`Corrupt` (also raised by *check*)."""
    envelope = open_envelope(_read(path), kind)
    found, data = envelope.get("schema"), envelope.get("data")
    if not isinstance(found, int) or found > schema or not isinstance(data, dict):
        raise Corrupt("has a malformed header or a newer schema")
    if check is not None:
        check(data)
    return data


def load(
    path: str, kind: str, schema: int, check: Callable[[dict[str, Any]], object] | None = None
) -> dict[str, Any] | None:
    """The data of *path* (or of its backup); ``None`` when neither exists.

    *check* validates the data the way the pydantic model would, raising :class:`Corrupt`,
    so a generation that would not validate falls back to the backup here too.
    """
    backup = path + ".bak"
    if not os.path.lexists(path):
        if not os.path.lexists(backup):
            return None
        problem = "is missing but its backup exists"
    else:
        try:
            return decode(path, kind, schema, check)
        except Corrupt as exc:
            problem = str(exc)
    try:
        return decode(backup, kind, schema, check)
    except Corrupt as exc:
        from pathlib import Path  # the error path only

        reason = str(exc) if os.path.lexists(backup) else "does not exist"
        raise StateError(
            Path(path),
            f"{problem}; its backup {os.path.basename(backup)} {reason}",
            hint="run `gitxact doctor --fix` to rebuild it from git (or restore the file by hand)",
        ) from None
