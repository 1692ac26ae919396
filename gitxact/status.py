"""What ``gitxact status`` reports: locks with holders and waiters, state health, lock times.

Built from the files on disk each time (nothing cached): a holder record whose owner
died is cleared while it is read (see :mod:`gitxact.lockqueue`), so status never
shows a dead holder.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from gitxact.documents import Document
from gitxact.errors import StateError
from gitxact.lockqueue import Party
from gitxact.locks import Level, summarize_waits
from gitxact.recover import LastRecover, last_recover
from gitxact.txdocs import TxInfo, list_transactions
from gitxact.workspace import STATE_DIR, Workspace
from gitxact.worktree_docs import LeaseInfo


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


def collect(ws: Workspace) -> StatusDoc:
    now = time.time()
    locks: list[LockDoc] = []
    for key in ws.locks.known_keys():
        everyone = ws.locks.parties(key)
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
    state_dir = ws.state_dir / STATE_DIR
    if state_dir.is_dir():
        for path in sorted(state_dir.glob("*.json")):
            health = _health(ws, path.name)
            if health is not None:
                files.append(health)
    return StatusDoc(
        repository=RepositoryDoc(
            common_dir=str(ws.layout.common_dir),
            worktree=str(ws.layout.worktree) if ws.layout.worktree else None,
            worktree_id=ws.layout.worktree_id,
            state_dir=str(ws.state_dir),
            initialized=(state_dir / "meta.json").exists(),
        ),
        agent=ws.agent,
        locks=locks,
        state_files=files,
        lock_times=summarize_waits(ws.locks.stats()),
        leases=_leases(ws),
        transactions=list_transactions(ws).transactions,
        last_recover=last_recover(ws),
    )


def _leases(ws: Workspace) -> list[LeaseInfo]:
    from gitxact.lease_report import collect

    try:
        return collect(ws).leases
    except StateError:
        return []  # the state_files section already names the damaged file


def _health(ws: Workspace, name: str) -> StateFileDoc | None:
    from gitxact.state_registry import model_for

    model = model_for(name)
    if model is None:
        return None
    health = ws.store.file(name, model, subdir=STATE_DIR).check()
    return StateFileDoc(
        name=name,
        ok=health.ok,
        problem=health.reason,
        backup_ok=health.backup_ok,
        generation=health.generation,
    )
