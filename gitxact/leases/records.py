"""Lease records: which agent holds which worktree and branch, and whether it still lives.

This module only owns the record and the questions other features ask of it (the
guard: "is any lease active?", the hooks: "who owns this worktree / branch?", the
transactions: "what is this worktree's agent called?"). Creating and ending leases
is :mod:`gitxact.worktrees.manager`' job. The records live in ``state/leases.json`` and are
changed only under the ``leases`` resource lock.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, ClassVar, Literal

from gitxact.leases import reader as lease_reader
from gitxact.state.record import (
    FLAG,
    INTEGER,
    INTEGERS,
    NUMBER,
    OPTIONAL_INTEGER,
    OPTIONAL_STRING,
    STRING,
    STRINGS,
    Record,
    dict_of,
    field,
    one_of,
)
from gitxact.state.store import StateFile
from gitxact.util.identity import ProcessIdentity

if TYPE_CHECKING:
    from collections.abc import Callable

    from gitxact.core.repo import Repo

LEASES_LOCK = "leases"

#: Where a lease is in its life, so a crash at any step leaves a record that says what to
#: finish or undo (:mod:`gitxact.worktrees.sweep`). ``provisioning`` is written before the
#: folder is claimed and stays until the worktree's files are checked out (``active``);
#: ``releasing`` is written before anything of a release that keeps its branch, and
#: ``removing`` once the worktree's uncommitted work is saved, before its files go.
Phase = Literal["provisioning", "active", "releasing", "removing"]
PHASES: tuple[Phase, ...] = ("provisioning", "active", "releasing", "removing")


class Lease(Record):
    """One agent's lease on one worktree and branch. The token itself is never stored.

    Unknown fields are ignored (a newer gitxact's additions survive a read by this one's
    listing).
    """

    agent: str = field(STRING)
    path: str = field(STRING)
    branch: str = field(STRING)
    base: str = field(STRING)
    token_hash: str = field(STRING)
    owner_pid: int = field(INTEGER)
    owner_host: str = field(STRING)
    owner_start: int | None = field(OPTIONAL_INTEGER, default=None)
    created: float = field(NUMBER)
    heartbeat: float = field(NUMBER)
    ttl: float = field(NUMBER)
    worktree_id: str | None = field(OPTIONAL_STRING, default=None)
    phase: Phase = field(one_of(*PHASES), default="active")
    #: The commit the branch started from (``base`` may be a branch name that moves on).
    base_commit: str | None = field(OPTIONAL_STRING, default=None)
    #: Whether this lease created the branch (only then may ending it delete the branch).
    branch_created: bool = field(FLAG, default=False)
    #: Set when a release asked to keep the branch, so a repair after a crash honours it.
    keep_branch: bool = field(FLAG, default=False)
    #: The loopback ports allocated to this lease (``.gitxact.toml``'s ``lease.ports``), distinct
    #: from every other record's; they are free again once the record is gone.
    ports: list[int] = field(INTEGERS, default=[])
    #: The teardown commands of the trusted ``.gitxact.toml`` it was made from, and that file's
    #: SHA-256: a release runs these, never the file as the agent may have edited it since.
    teardown: list[str] = field(STRINGS, default=[])
    config_sha: str | None = field(OPTIONAL_STRING, default=None)
    #: The folders a sparse lease checks out (cone mode); empty: every file.
    sparse: list[str] = field(STRINGS, default=[])
    #: Bytes its folder took on disk when last measured (:mod:`gitxact.worktrees.disk`), and
    #: when (Unix seconds); ``None``: never measured (a record older than the field).
    disk_bytes: int | None = field(OPTIONAL_INTEGER, default=None)
    disk_measured: int | None = field(OPTIONAL_INTEGER, default=None)

    def __repr__(self) -> str:
        return f"Lease(agent={self.agent!r}, path={self.path!r}, branch={self.branch!r}, phase={self.phase!r})"

    @property
    def owner(self) -> ProcessIdentity:
        return ProcessIdentity(pid=self.owner_pid, host=self.owner_host, start=self.owner_start)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.heartbeat > self.ttl

    def owner_dead(self) -> bool:
        """True only when the owner is provably gone (same host, pid dead or recycled)."""
        return self.owner.is_dead()

    def owner_alive(self) -> bool:
        """True only when the owner provably still runs (this host, same pid and start time)."""
        return self.owner.is_alive()

    def owner_state(self) -> bool | None:
        """``True``: provably alive; ``False``: provably gone; ``None``: not checkable here."""
        return False if self.owner_dead() else True if self.owner_alive() else None

    def is_live(self, now: float | None = None) -> bool:
        """A live lease is never ended by reap, recover or ``doctor --fix`` (nor gc or prune)."""
        return counts_as_live(self.owner_state(), expired=self.expired(now))

    def token_matches(self, token: str) -> bool:
        return lease_reader.token_matches(self.token_hash, token)


def counts_as_live(owner_alive: bool | None, *, expired: bool) -> bool:
    """The one rule of what ``live`` means (*owner_alive* as :meth:`Lease.owner_state` tells).

    On this host the owner's liveness decides, whatever the heartbeat: an agent that never
    calls ``renew`` keeps its worktree while its process runs, and loses it once that
    process is provably gone. The TTL decides only where liveness cannot be proven here
    (an owner on another host, or one recorded without a start time).
    """
    return owner_alive is True or (owner_alive is None and not expired)


class LeaseState(Record):
    """``leases.json``: agent -> :class:`Lease`; exactly the field ``leases``."""

    KIND: ClassVar[str] = "leases"
    SCHEMA: ClassVar[int] = lease_reader.SCHEMA
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    leases: dict[str, Lease] = field(dict_of(Lease), default={})


def leases_file(repo: Repo) -> StateFile[LeaseState]:
    return repo.state_file(lease_reader.LEASES_FILE, LeaseState)


def load(repo: Repo) -> dict[str, Lease]:
    """Every lease record, live or not (reads take no lock: writes are atomic)."""
    path = repo.state_dir / "state" / lease_reader.LEASES_FILE
    if not path.exists() and not path.with_name(lease_reader.LEASES_FILE + ".bak").exists():
        return {}
    return leases_file(repo).load().leases


def active(repo: Repo) -> list[Lease]:
    """Leases that are not provably over: what the gc/prune guard protects.

    A lease whose owner is alive, or unknown (another host), counts until its TTL
    passes; an expired or dead-owner lease still counts until it is reaped, so the
    guard errs on the side of keeping data.
    """
    return sorted(load(repo).values(), key=lambda lease: lease.agent)


def for_agent(repo: Repo, agent: str) -> Lease | None:
    """*agent*'s lease, only if its worktree carries gitxact's mark for it (see :func:`for_path`)."""
    lease = load(repo).get(agent)
    return lease if lease is not None and _view(repo, lease).genuine() else None


def for_path(repo: Repo, path: os.PathLike[str] | str) -> Lease | None:
    """The genuine lease whose worktree contains *path*: :func:`gitxact.leases.reader.for_path`'s
    answer, the one meaning the hooks and ``gx`` use too."""
    return _lookup(repo, lambda views: lease_reader.for_path(views, os.fspath(path)))


def for_branch(repo: Repo, branch: str) -> Lease | None:
    """The genuine lease of a branch (``gitxact/x`` or ``refs/heads/gitxact/x``), as
    :func:`gitxact.leases.reader.for_branch` tells."""
    return _lookup(repo, lambda views: lease_reader.for_branch(views, branch))


def _view(repo: Repo, lease: Lease) -> lease_reader.LeaseView:
    view = lease_reader.LeaseView(lease.agent, lease.path, lease.branch, lease.worktree_id, lease.token_hash)
    view.common_dir = os.fspath(repo.layout.common_dir)
    return view


def _lookup(repo: Repo, find: Callable[[list[lease_reader.LeaseView]], lease_reader.LeaseView | None]) -> Lease | None:
    """Ask the lean lookup *find* over this read's records; the record it picks, or ``None``.

    Reap and doctor must still see records that are not genuine, to report and drop them:
    they iterate :func:`load`, never these lookups.
    """
    records = sorted(load(repo).values(), key=lambda lease: lease.agent)
    views = [_view(repo, lease) for lease in records]
    found = find(views)
    return next((lease for lease, view in zip(records, views, strict=True) if view is found), None)


# -- changes (read-modify-write under the leases lock) ---------------------------------------


def save_record(repo: Repo, lease: Lease) -> None:
    file = leases_file(repo)
    with repo.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        state.leases[lease.agent] = lease
        file.save(state)


def replace_record(repo: Repo, lease: Lease) -> bool:
    """Write *lease* over its record only if that record is still the same lease (same token
    hash): a step taken outside the repository lock never revives a lease someone ended."""
    file = leases_file(repo)
    with repo.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        current = state.leases.get(lease.agent)
        if current is None or current.token_hash != lease.token_hash:
            return False
        state.leases[lease.agent] = lease
        file.save(state)
    return True


def current(repo: Repo, lease: Lease) -> Lease | None:
    """*lease*'s record as it is now, or ``None`` once that lease ended (another lease of the
    same agent is not it)."""
    found = load_records(repo).get(lease.agent)
    return found if found is not None and found.token_hash == lease.token_hash else None


def drop_record(repo: Repo, lease: Lease) -> bool:
    """Remove *lease*'s record, only if it is still that lease (same token hash)."""
    file = leases_file(repo)
    with repo.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        current = state.leases.get(lease.agent)
        if current is None or current.token_hash != lease.token_hash:
            return False
        del state.leases[lease.agent]
        file.save(state)
    return True


def load_records(repo: Repo) -> dict[str, Lease]:
    with repo.locks.resource(LEASES_LOCK):
        return dict(leases_file(repo).load(repair=True).leases)
