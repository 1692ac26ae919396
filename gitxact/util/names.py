"""Names people and agents give gitxact: checked here, once, before they reach a path or a ref.

Agent names end up in paths, branch names and ref names; transaction and savepoint
names in ref names; tracker keys and resource names in JSON and lock file names. The
spelling itself is the lean core's (:func:`gitxact.util.files.spelled`, by which
:mod:`gitxact.locking.naming` names lock files on ``gx status``'s path); this module says
what is wrong with a name that misses it.
"""

from __future__ import annotations

import os

from gitxact.errors import InvalidNameError, UsageError
from gitxact.util.files import NAME_FIRST, ref_safe, spelled
from gitxact.util.startup import AGENT_ENV

_KEY_CHARS = NAME_FIRST + ".:/-"
#: How many numbered spellings of one name :func:`numbered` offers.
NUMBERED_LIMIT = 1000

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from collections.abc import Iterator


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
    if not isinstance(name, str) or not spelled(name, limit):
        raise InvalidNameError(
            f"invalid {what} {shown}",
            hint=f"use 1-{limit} characters of A-Z a-z 0-9 . _ -, not starting with '-' or '.'",
        )
    if not ref_safe(name):
        raise InvalidNameError(
            f"invalid {what} {shown}: git refuses '..', a trailing '.' and a '.lock' suffix in ref names"
        )
    return name


def validate_key(key: str, what: str = "key") -> str:
    """Tracker keys and resource names: printable, bounded, no path tricks."""
    if not (isinstance(key, str) and spelled(key, 128, _KEY_CHARS)) or ".." in key or "//" in key or key.endswith("/"):
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


def numbered(name: str) -> Iterator[str]:
    """*name*, then ``name-2``, ``name-3``... (:data:`NUMBERED_LIMIT` in all): where a second
    worktree folder or snapshot of one name goes, the first of them still free."""
    yield name
    for n in range(2, NUMBERED_LIMIT + 1):
        yield f"{name}-{n}"
