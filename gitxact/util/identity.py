"""Which process is acting, and whether a recorded one still lives.

A process is recorded as pid + host + start token
(boot id and start time from ``/proc``), and the liveness probes fail closed: a pid on
another host, or a live pid whose start time cannot be read, counts as alive (never
provably dead). A recycled pid (same number, other start token) counts as dead. Provably
alive is the stronger claim: this host, the pid answers, the same start token.
"""

from __future__ import annotations

import os

from gitxact.util.value import Value

#: The process whose life a lease follows, when a wrapper names it (Claude Code's hooks,
#: ``worktree acquire --owner-pid``, ``gitxact mcp --owner-pid``).
OWNER_PID_ENV = "GITXACT_OWNER_PID"


class ProcessIdentity(Value):
    """A process as other processes can check it later: pid, host, start token."""

    __slots__ = ("host", "pid", "start")

    def __init__(self, *, pid: int, host: str, start: int | None) -> None:
        self.pid = pid
        self.host = host
        self.start = start

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

    def is_alive(self) -> bool:
        """True only when this process provably still runs: on this host, its pid answers,
        it is no zombie, and its start token is the one recorded. Another host's pid, a
        record without a start token, or a start time that cannot be read prove nothing
        (then neither this nor :meth:`is_dead` holds, and a caller falls back on a TTL).
        """
        if not self.on_this_host or self.start is None or not process_alive(self.pid):
            return False
        return process_start_token(self.pid) == self.start and not _is_zombie(self.pid)


def _stat_fields(pid: int) -> list[bytes]:
    """The fields of ``/proc/<pid>/stat`` after the command name, from the state letter on.

    The command name may hold spaces and parentheses: fields count from its last ``)``.
    Empty when the process (or ``/proc``) cannot be read.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return []
    return stat[stat.rfind(b")") + 1 :].split()


def _is_zombie(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in (b"Z", b"X")


def this_host() -> str:
    return host_name()


# -- hosts and processes ---------------------------------------------------------------------

#: ``PROC_PID_INIT_INO`` and ``PROC_TIME_INIT_INO`` in ``linux/proc_ns.h``: the initial namespaces.
_INITIAL_PID_NAMESPACE = 0xEFFFFFFC
_INITIAL_TIME_NAMESPACE = 0xEFFFFFFA
#: Marks a host name seen from inside a PID namespace (a container sharing the host's name).
NAMESPACE_MARK = "?pidns-"


# Read once per process (functools.cache without functools, which imports collections: gx's path).
_host: str | None = None
_boot: int | None = None


def host_name() -> str:
    """This host's name, plus its PID namespace when not the initial one.

    Two containers can share a host name while numbering processes on their own: a pid
    recorded in one says nothing in the other, so they must count as different hosts.
    The name is the kernel's (``uname``, what ``gethostname`` returns on Linux), read
    without importing ``socket``, on every locked ``gx`` call; read once per process.
    Start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks").
    """
    global _host  # noqa: PLW0603 - a per-process cache
    if _host is None:
        _host = _read_host_name()
    return _host


def _read_host_name() -> str:
    name = "".join(c if "!" <= c <= "~" and c != "?" else f"?{ord(c) & 0xFF:02x}" for c in os.uname().nodename)
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = _INITIAL_PID_NAMESPACE
    if namespace != _INITIAL_PID_NAMESPACE:
        name += f"{NAMESPACE_MARK}{namespace:x}"
    return name[:253] or "?"


def _boot_id() -> int:
    """Start times count from boot: the boot id tells two boots apart (0 when unreadable; read once)."""
    global _boot  # noqa: PLW0603 - a per-process cache
    if _boot is None:
        try:
            with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
                _boot = int(handle.read().strip().replace("-", ""), 16)
        except (OSError, ValueError):
            _boot = 0
    return _boot


def _start_times_comparable() -> bool:
    """A time namespace can shift start times: then they prove nothing, and none is read."""
    try:
        return os.stat("/proc/self/ns/time").st_ino == _INITIAL_TIME_NAMESPACE
    except FileNotFoundError:  # no time namespaces on this kernel
        return True
    except OSError:
        return False


def process_start_token(pid: int) -> int | None:
    """``boot id << 64 | start time`` of *pid*, or ``None`` when it cannot be read."""
    if not _start_times_comparable():
        return None
    fields = _stat_fields(pid)
    try:
        start = int(fields[19])
    except (IndexError, ValueError):
        return None
    return (_boot_id() << 64) | start


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def owner_is_stale(pid: int, host: str, start: int | None) -> bool:
    """True only when the process (*pid*, *host*, *start*) provably no longer runs.

    Another host cannot be checked from here; a live pid with an unknown start token
    may be the owner. A live pid whose start token differs is a recycled pid.
    """
    if host != host_name():
        return False
    if not process_alive(pid):
        return True
    if start is None:
        return False
    current = process_start_token(pid)
    return current is not None and current != start
