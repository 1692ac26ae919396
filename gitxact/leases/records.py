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

from pydantic import BaseModel, Field

from gitxact.leases import reader as lease_reader
from gitxact.state.models import StateModel
from gitxact.state.store import StateFile
from gitxact.util.identity import ProcessIdentity

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

LEASES_FILE = "leases.json"
LEASES_LOCK = "leases"

#: Where a lease is in its life, so a crash at any step leaves a record that says what to
#: finish or undo (:mod:`gitxact.worktrees.reaper`). ``provisioning`` is written before the
#: folder is claimed and stays until the worktree's files are checked out (``active``);
#: ``releasing`` is written before anything of a release that keeps its branch, and
#: ``removing`` once the worktree's uncommitted work is saved, before its files go.
Phase = Literal["provisioning", "active", "releasing", "removing"]


class Lease(BaseModel):
    """One agent's lease on one worktree and branch. The token itself is never stored."""

    agent: str
    path: str
    branch: str
    base: str
    token_hash: str
    owner_pid: int
    owner_host: str
    owner_start: int | None = None
    created: float
    heartbeat: float
    ttl: float
    worktree_id: str | None = None
    phase: Phase = "active"
    #: The commit the branch started from (``base`` may be a branch name that moves on).
    base_commit: str | None = None
    #: Whether this lease created the branch (only then may ending it delete the branch).
    branch_created: bool = False
    #: Set when a release asked to keep the branch, so a repair after a crash honours it.
    keep_branch: bool = False

    @property
    def owner(self) -> ProcessIdentity:
        return ProcessIdentity(pid=self.owner_pid, host=self.owner_host, start=self.owner_start)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) - self.heartbeat > self.ttl

    def owner_dead(self) -> bool:
        """True only when the owner is provably gone (same host, pid dead or recycled)."""
        return self.owner.is_dead()

    def is_live(self, now: float | None = None) -> bool:
        """A live lease is never touched by reap, gc or prune."""
        return not self.expired(now) and not self.owner_dead()

    def token_matches(self, token: str) -> bool:
        return lease_reader.token_matches(self.token_hash, token)


class LeaseState(StateModel):
    KIND: ClassVar[str] = "leases"
    SCHEMA: ClassVar[int] = 1

    leases: dict[str, Lease] = Field(default_factory=dict)


hash_token = lease_reader.hash_token


def leases_file(repo: Repo) -> StateFile[LeaseState]:
    return repo.state_file(LEASES_FILE, LeaseState)


def load(repo: Repo) -> dict[str, Lease]:
    """Every lease record, live or not (reads take no lock: writes are atomic)."""
    path = repo.state_dir / "state" / LEASES_FILE
    if not path.exists() and not path.with_name(LEASES_FILE + ".bak").exists():
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
    return load(repo).get(agent)


def for_path(repo: Repo, path: os.PathLike[str] | str) -> Lease | None:
    """The lease whose worktree contains *path* (compared by real path)."""
    target = os.path.realpath(path)
    for lease in load(repo).values():
        root = os.path.realpath(lease.path)
        if target == root or target.startswith(root + os.sep):
            return lease
    return None


def for_branch(repo: Repo, branch: str) -> Lease | None:
    """The lease of a branch, given as ``gitxact/x`` or ``refs/heads/gitxact/x``."""
    short = branch.removeprefix("refs/heads/")
    for lease in load(repo).values():
        if lease.branch.removeprefix("refs/heads/") == short:
            return lease
    return None


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
