"""What ``gitxact status`` reports: locks with holders and waiters, state health, lock times.

Built from the files on disk each time (nothing cached): a holder record whose owner
died is cleared while it is read (see :mod:`gitxact.locking.tickets`), so status never
shows a dead holder.

Without pydantic (issue 14: its import alone is nine bare interpreter start-ups): the
documents here are plain (:mod:`gitxact.core.plain`), the state files they verify have
hand-validated models, and the two models that still use pydantic are imported only when
their files exist (a transaction journal, the landing queue).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from gitxact.core.plain import PlainDocument, PlainModel
from gitxact.core.repo import STATE_DIR, Repo
from gitxact.errors import StateError
from gitxact.health.database import database_overview
from gitxact.health.last_recover import LastRecover, last_recover
from gitxact.locking.locks import Level, summarize_waits
from gitxact.tx import journal_reader

if TYPE_CHECKING:
    from pathlib import Path

    from gitxact.backends.overview import DatabaseDoc
    from gitxact.land.foresight import MergeTrees
    from gitxact.locking.tickets import Party
    from gitxact.snapshots.usage import SnapshotUsage
    from gitxact.tx.results import TxInfo
    from gitxact.worktrees.lease_info import LeaseInfo


class PartyDoc(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("mode", "state", "pid", "host", "agent", "command", "since", "age")
    __slots__ = FIELDS

    def __init__(
        self,
        *,
        mode: str,
        state: str,
        pid: int,
        host: str | None,
        agent: str | None,
        command: str | None,
        since: float,
        age: float,
    ) -> None:
        self.mode = mode
        self.state = state
        self.pid = pid
        self.host = host
        self.agent = agent
        self.command = command
        self.since = float(since)
        self.age = float(age)

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


class LockDoc(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "level", "holders", "waiters")
    __slots__ = FIELDS

    def __init__(self, *, name: str, level: str, holders: list[PartyDoc], waiters: list[PartyDoc]) -> None:
        self.name = name
        self.level = level
        self.holders = holders
        self.waiters = waiters


class StateFileDoc(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("name", "ok", "problem", "backup_ok", "generation")
    __slots__ = FIELDS

    def __init__(self, *, name: str, ok: bool, problem: str | None, backup_ok: bool, generation: int | None) -> None:
        self.name = name
        self.ok = ok
        self.problem = problem
        self.backup_ok = backup_ok
        self.generation = generation


class RepositoryDoc(PlainModel):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = ("common_dir", "worktree", "worktree_id", "branch", "state_dir", "initialized")
    __slots__ = FIELDS

    def __init__(
        self,
        *,
        common_dir: str,
        worktree: str | None,
        worktree_id: str,
        branch: str | None,
        state_dir: str,
        initialized: bool,
    ) -> None:
        self.common_dir = common_dir
        self.worktree = worktree
        self.worktree_id = worktree_id
        #: The branch checked out here (``None``: detached HEAD, or no worktree).
        self.branch = branch
        self.state_dir = state_dir
        self.initialized = initialized


class StatusDoc(PlainDocument):
    #: The fields, in the order ``--json`` prints them.
    FIELDS: ClassVar[tuple[str, ...]] = (
        "repository",
        "agent",
        "locks",
        "state_files",
        "lock_times",
        "leases",
        "leases_disk_bytes",
        "transactions",
        "last_recover",
        "snapshots",
        "database",
    )
    __slots__ = FIELDS

    def __init__(
        self,
        *,
        repository: RepositoryDoc,
        agent: str | None,
        locks: list[LockDoc],
        state_files: list[StateFileDoc],
        lock_times: dict[str, Any],
        leases: list[LeaseInfo] | None = None,
        transactions: list[TxInfo] | None = None,
        last_recover: LastRecover | None = None,
        snapshots: SnapshotUsage | None = None,
        database: DatabaseDoc | None = None,
    ) -> None:
        self.repository = repository
        self.agent = agent
        self.locks = locks
        self.state_files = state_files
        self.lock_times = lock_times
        #: Worktree leases, with ahead/behind and, when asked, dirty/clean (never a token or its hash).
        self.leases: list[LeaseInfo] = [] if leases is None else leases
        from gitxact.worktrees.lease_info import disk_total  # loaded already by whoever listed the leases

        #: The leases' recorded sizes on disk added up (as ``worktree list``'s ``disk_bytes``).
        self.leases_disk_bytes = disk_total(self.leases)
        self.transactions: list[TxInfo] = [] if transactions is None else transactions
        self.last_recover = last_recover
        #: Kept snapshots: count, size, how many a live lease or transaction protects, the expiry.
        self.snapshots = snapshots
        #: PostgreSQL backend only: the server, its named-lock holders and waiters, the fleet's claims.
        self.database = database


def collect(
    repo: Repo,
    *,
    dirty: bool = True,
    conflicts_onto: str | None = None,
    merges: MergeTrees | None = None,
    sizes: bool = False,
) -> StatusDoc:
    """The status document; *dirty* looks whether each leased worktree holds uncommitted work,
    *conflicts_onto* what each lease's branch would conflict with (that target, the others;
    *merges* keeps the merges already done, for a caller that asks again and again); *sizes*
    measures each lease's size on disk again (else the recorded one is shown)."""
    now = time.time()
    locks: list[LockDoc] = []
    for key in repo.locks.known_keys():
        everyone = repo.locks.parties(key)
        if not everyone:
            continue
        locks.append(
            LockDoc(
                name=key.slug,
                level=Level.NAMES[key.level],
                holders=[PartyDoc.of(p, now) for p in everyone if p.holding],
                waiters=[PartyDoc.of(p, now) for p in everyone if not p.holding],
            )
        )
    files: list[StateFileDoc] = []
    state_dir = repo.state_dir / STATE_DIR
    names: list[str] = []
    if state_dir.is_dir():
        names = sorted(path.name for path in state_dir.glob("*.json"))
        for name in names:
            health = _health(repo, name)
            if health is not None:
                files.append(health)
    return StatusDoc(
        repository=RepositoryDoc(
            common_dir=str(repo.layout.common_dir),
            worktree=str(repo.layout.worktree) if repo.layout.worktree else None,
            worktree_id=repo.layout.worktree_id,
            branch=_checked_out_branch(repo),
            state_dir=str(repo.state_dir),
            initialized=(state_dir / "meta.json").exists(),
        ),
        agent=repo.agent,
        locks=locks,
        state_files=files,
        lock_times=summarize_waits(repo.locks.stats()),
        leases=_leases(repo, dirty, conflicts_onto, merges, sizes),
        transactions=_transactions(repo, state_dir),
        last_recover=last_recover(repo),
        snapshots=_snapshots(repo),
        database=database_overview(repo),
    )


def _transactions(repo: Repo, state_dir: Path) -> list[TxInfo]:
    """Open transactions; the journal model (pydantic) is imported only when a journal exists."""
    if not state_dir.is_dir() or not any(state_dir.glob(journal_reader.JOURNAL_GLOB + "*")):
        return []
    from gitxact.tx.results import list_transactions

    return list_transactions(repo).transactions


def _snapshots(repo: Repo) -> SnapshotUsage:
    from gitxact.snapshots.usage import usage

    return usage(repo)


def _checked_out_branch(repo: Repo) -> str | None:
    """The branch HEAD names, read from the HEAD file as git keeps it (no git process for status).

    A HEAD that is not ``ref: refs/heads/...`` is detached (or not readable): ``None``.
    """
    if repo.layout.worktree is None:
        return None
    try:
        text = (repo.layout.git_dir / "HEAD").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    ref = text.removeprefix("ref: ") if text.startswith("ref: ") else None
    return ref.removeprefix("refs/heads/") if ref is not None and ref.startswith("refs/heads/") else None


def _leases(
    repo: Repo, dirty: bool, conflicts_onto: str | None, merges: MergeTrees | None, sizes: bool
) -> list[LeaseInfo]:
    from gitxact.worktrees.listing import collect

    try:
        infos = collect(repo, dirty=dirty, sizes=sizes).leases
    except StateError:
        return []  # the state_files section already names the damaged file
    if conflicts_onto is not None and infos:
        from gitxact.land.foresight import annotate

        annotate(repo, infos, conflicts_onto, merges=merges)
    return infos


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
