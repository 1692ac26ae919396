"""Who is acting: agent names, process identity and liveness.

Agent names end up in paths, branch names and ref names, so they are checked here
before they touch any of those. Process liveness reuses filelock's owner probes (pid +
host + process start time), which fail closed: a pid on another host, or a live pid
whose start time cannot be read, counts as alive. A recycled pid (same number, other
start time) counts as dead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from filelock._identity import host_name, owner_is_stale, process_start_token

from gitxact.errors import InvalidNameError, UsageError

AGENT_ENV = "GITXACT_AGENT"
_AGENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._:/-]{0,127}")


def validate_agent(name: str) -> str:
    """Return *name* if it is a valid agent name, else raise :class:`InvalidNameError` (exit 2).

    1-64 characters of ``[A-Za-z0-9._-]``, not starting with ``-`` or ``.`` (DESIGN.md
    "Identity"); ``..`` and a ``.lock`` suffix are refused too because git refuses them
    in the branch ``gitxact/<agent>``.
    """
    shown = repr(name) if name else "''"
    if not isinstance(name, str) or not _AGENT_RE.fullmatch(name):
        raise InvalidNameError(
            f"invalid agent name {shown}",
            hint="use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '-' or '.'",
        )
    if ".." in name or name.endswith((".lock", ".")):
        raise InvalidNameError(
            f"invalid agent name {shown}: git refuses '..', a trailing '.' and a '.lock' suffix in ref names"
        )
    return name


def validate_key(key: str, what: str = "key") -> str:
    """Tracker keys and resource names: printable, bounded, no path tricks."""
    if not _KEY_RE.fullmatch(key) or ".." in key or "//" in key or key.endswith("/"):
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


@dataclass(frozen=True)
class ProcessIdentity:
    """A process as other processes can check it later: pid, host, start token."""

    pid: int
    host: str
    start: int | None

    @classmethod
    def current(cls) -> ProcessIdentity:
        pid = os.getpid()
        return cls(pid=pid, host=host_name(), start=process_start_token(pid))

    @classmethod
    def of(cls, pid: int) -> ProcessIdentity:
        return cls(pid=pid, host=host_name(), start=process_start_token(pid))

    @property
    def on_this_host(self) -> bool:
        return self.host == host_name()

    def is_dead(self) -> bool:
        """True only when this process is provably gone (fails closed).

        A zombie (killed, not yet reaped by its parent) still answers ``kill(pid, 0)``
        with its old start time, so it is read from ``/proc`` as well.
        """
        if owner_is_stale(self.pid, self.host, self.start):
            return True
        return self.on_this_host and _is_zombie(self.pid)


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    # The state letter follows the last ')' (the command name may itself hold parentheses).
    tail = stat[stat.rfind(b")") + 1 :].split()
    return bool(tail) and tail[0] in (b"Z", b"X")


def this_host() -> str:
    return host_name()
