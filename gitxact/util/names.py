"""Names people and agents give gitxact: checked here, once, before they reach a path or a ref.

Agent names end up in paths, branch names and ref names; transaction and savepoint
names in ref names; tracker keys and resource names in JSON and lock file names.
"""

from __future__ import annotations

import os

from gitxact.errors import InvalidNameError, UsageError

AGENT_ENV = "GITXACT_AGENT"
# Character sets, not regular expressions: this module is on gx's locked path, which
# does not import re (and the enum it brings).
# start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")
_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
_NAME_CHARS = _FIRST + ".-"
_KEY_CHARS = _FIRST + ".:/-"


def _spelled(text: str, rest: str) -> bool:
    """*text* is one character of :data:`_FIRST`, then any of *rest* (ASCII only)."""
    return text[:1] != "" and text[0] in _FIRST and not text.strip(rest)


def validate_agent(name: str) -> str:
    """Return *name* if it is a valid agent name, else raise :class:`InvalidNameError` (exit 2)."""
    return validate_name(name, "agent name")


def validate_name(name: str, what: str, limit: int = 64) -> str:
    """Return *name* if it can be part of a path and a ref name, else raise :class:`InvalidNameError`.

    Agent, transaction and savepoint names all end up in branch or ref names (and agent
    names in paths), lock names in file names: 1-*limit* characters of ``[A-Za-z0-9._-]``, not starting with ``-`` or
    ``.``; ``..``, a trailing ``.`` and a ``.lock`` suffix are refused too because git
    refuses them in ref names.
    """
    shown = repr(name) if name else "''"
    if not isinstance(name, str) or len(name) > limit or not _spelled(name, _NAME_CHARS):
        raise InvalidNameError(
            f"invalid {what} {shown}",
            hint=f"use 1-{limit} characters of A-Z a-z 0-9 . _ -, not starting with '-' or '.'",
        )
    if ".." in name or name.endswith((".lock", ".")):
        raise InvalidNameError(
            f"invalid {what} {shown}: git refuses '..', a trailing '.' and a '.lock' suffix in ref names"
        )
    return name


def validate_key(key: str, what: str = "key") -> str:
    """Tracker keys and resource names: printable, bounded, no path tricks."""
    spelled = isinstance(key, str) and len(key) <= 128 and _spelled(key, _KEY_CHARS)
    if not spelled or ".." in key or "//" in key or key.endswith("/"):
        raise InvalidNameError(
            f"invalid {what} {key!r}",
            hint=f"a {what} is 1-128 characters of A-Z a-z 0-9 . _ : / -, not starting with '-', '.' or '/'",
        )
    return key


def agent_from_env() -> str | None:
    """The agent this process acts for (``GITXACT_AGENT``), validated; ``None`` if unset."""
    value = os.environ.get(AGENT_ENV)
    if value is None or value == "":
        return None
    try:
        return validate_agent(value)
    except InvalidNameError as exc:
        raise UsageError(f"{AGENT_ENV}: {exc.message}", hint=exc.hint) from exc
