"""What ``gitxact status`` reports: locks with holders and waiters, state health, lock times.

Built from the files on disk each time (nothing cached): a holder record whose owner
died is cleared while it is read (see :mod:`gitxact.locking.tickets`), so status never
shows a dead holder.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from gitxact.backends.overview import DatabaseDoc
from gitxact.core.documents import Document
from gitxact.core.repo import STATE_DIR, Repo
from gitxact.errors import StateError
from gitxact.health.database import database_overview
from gitxact.health.last_recover import LastRecover, last_recover
from gitxact.locking.locks import Level, summarize_waits
from gitxact.locking.tickets import Party
from gitxact.snapshots.results import SnapshotUsage
from gitxact.tx.results import TxInfo, list_transactions
from gitxact.worktrees.results import LeaseInfo


class PartyDoc(BaseModel):
    mode: str
    state: str
    pid: int
    host: str | None
    agent: str | None
    command: str | None
    since: float
    age: float

    @classmethod
    def of(cls, party: Party, now: float) -> PartyDoc:
        return cls(
            mode=party.mode,
            state="holding" if party.holding else "waiting",
            pid=party.pid,
            host=party.host,
            agent=party.agent,
            command=party.command,
            since=round(party.since, 3),
            age=round(max(0.0, now - party.since), 3),
        )


class LockDoc(BaseModel):
    name: str
    level: str
    holders: list[PartyDoc]
    waiters: list[PartyDoc]


class StateFileDoc(BaseModel):
    name: str
    ok: bool
    problem: str | None
    backup_ok: bool
    generation: int | None


class RepositoryDoc(BaseModel):
    common_dir: str
    worktree: str | None
    worktree_id: str
    state_dir: str
    initialized: bool


class StatusDoc(Document):
    repository: RepositoryDoc
    agent: str | None
    locks: list[LockDoc]
    state_files: list[StateFileDoc]
    lock_times: dict[str, Any]
    #: Worktree leases, with dirty/clean and ahead/behind (never a token or its hash).
    leases: list[LeaseInfo] = Field(default_factory=list)
    transactions: list[TxInfo] = Field(default_factory=list)
    last_recover: LastRecover | None = None
    #: Kept snapshots: count, size, how many a live lease or transaction protects, the expiry.
    snapshots: SnapshotUsage | None = None
    #: PostgreSQL backend only: the server, its named-lock holders and waiters, the fleet's claims.
    database: DatabaseDoc | None = None


def collect(repo: Repo) -> StatusDoc:
    now = time.time()
    locks: list[LockDoc] = []
    for key in repo.locks.known_keys():
        everyone = repo.locks.parties(key)
        if not everyone:
            continue
        locks.append(
            LockDoc(
                name=key.slug,
                level=Level(key.level).name.lower(),
                holders=[PartyDoc.of(p, now) for p in everyone if p.holding],
                waiters=[PartyDoc.of(p, now) for p in everyone if not p.holding],
            )
        )
    files: list[StateFileDoc] = []
    state_dir = repo.state_dir / STATE_DIR
    if state_dir.is_dir():
        for path in sorted(state_dir.glob("*.json")):
            health = _health(repo, path.name)
            if health is not None:
                files.append(health)
    return StatusDoc(
        repository=RepositoryDoc(
            common_dir=str(repo.layout.common_dir),
            worktree=str(repo.layout.worktree) if repo.layout.worktree else None,
            worktree_id=repo.layout.worktree_id,
            state_dir=str(repo.state_dir),
            initialized=(state_dir / "meta.json").exists(),
        ),
        agent=repo.agent,
        locks=locks,
        state_files=files,
        lock_times=summarize_waits(repo.locks.stats()),
        leases=_leases(repo),
        transactions=list_transactions(repo).transactions,
        last_recover=last_recover(repo),
        snapshots=_snapshots(repo),
        database=database_overview(repo),
    )


def _snapshots(repo: Repo) -> SnapshotUsage:
    from gitxact.snapshots.usage import usage

    return usage(repo)


def _leases(repo: Repo) -> list[LeaseInfo]:
    from gitxact.worktrees.listing import collect

    try:
        return collect(repo).leases
    except StateError:
        return []  # the state_files section already names the damaged file


def _health(repo: Repo, name: str) -> StateFileDoc | None:
    from gitxact.health.state_files import model_for

    model = model_for(name)
    if model is None:
        return None
    health = repo.store.file(name, model, subdir=STATE_DIR).check()
    return StateFileDoc(
        name=name,
        ok=health.ok,
        problem=health.reason,
        backup_ok=health.backup_ok,
        generation=health.generation,
    )
