"""The record of the git ``gx`` started in a worktree: what lets gx clear its own leftovers.

``gx`` writes down the git it starts in a worktree (pid, host, start token) while it
holds that worktree's lock, and crosses it out when git ends. A record still there
names a git whose ``gx`` was killed: the only git whose leftover ``index.lock`` gitxact
may remove on its own (:func:`gitxact.git.lockfiles.clear_stale_index_lock`, which
proves the rest). Any other lock file is someone else's (a raw git, or one made by
hand to stand for a running git, as git's own test suite does): left alone.

A module of its own, on strings and ``os`` alone: every locked ``gx`` call writes and
removes this record, and must not pay for :mod:`gitxact.git.lockfiles`' process scan,
``pathlib`` or the git runner.
"""

from __future__ import annotations

import os

from gitxact.util import jsontext
from gitxact.util.files import FILE_MODE, open_state_file
from gitxact.util.identity import ProcessIdentity


def record_path(lock_dir: str, worktree_key: str) -> str:
    return os.path.join(lock_dir, f"git-started.{worktree_key}.json")


def note(record: str, pid: int, mode: int = FILE_MODE) -> None:
    """Write down that the git with *pid* now works in the record's worktree (a file of *mode*:
    the lock folder's, :func:`gitxact.util.files.file_mode_in`)."""
    who = ProcessIdentity.of(pid)
    folder, name = os.path.split(record)
    tmp = os.path.join(folder, f".{name}.{os.getpid()}")
    fd = open_state_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        os.write(fd, jsontext.dumps({"pid": who.pid, "host": who.host, "start": who.start}).encode())
    finally:
        os.close(fd)
    os.replace(tmp, record)


def forget(record: str) -> None:
    try:  # noqa: SIM105 - no contextlib on gx's path
        os.unlink(record)
    except FileNotFoundError:
        pass


def read(record: str) -> ProcessIdentity | None:
    """The git the record names; ``None`` when there is none (the usual case) or it is unreadable."""
    try:
        with open(record, "rb") as handle:
            data = jsontext.loads(handle.read())
        return ProcessIdentity(pid=int(data["pid"]), host=str(data["host"]), start=data.get("start"))
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
