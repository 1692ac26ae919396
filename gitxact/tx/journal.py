"""The write-ahead journal: one state file per worktree, ``state/journal-<worktree-id>.json``.

A transaction outlives the process that began it (``gitxact tx begin`` exits, ``tx
commit`` comes later), so its whole record lives here: savepoints, TDD progress, and
the *step* in progress. Every step that changes refs, the index or files is written
here **before** it is done, with everything needed to finish or undo it (expected
old values, target commits, paths). The file is written atomically and fsync'd by
:mod:`gitxact.state.store`, so after a crash ``gitxact recover`` reads exactly which step
was interrupted and replays the decision table of :mod:`gitxact.tx.recovery`.

The file is owned by the worktree lock (``repo.locks.worktree(id)``): read-modify-write
only under it. Readers that only look (``status``, ``tx list``, the pre-commit hook)
read without a lock; the atomic rename means they see a whole generation.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, Field

from gitxact.errors import StateError
from gitxact.state.models import StateModel
from gitxact.state.store import StateFile
from gitxact.tx import journal_reader
from gitxact.util import faults
from gitxact.util.identity import ProcessIdentity, this_host

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

HISTORY_LIMIT = 20

Op = Literal["begin", "savepoint", "rollback", "commit", "red", "green", "refactor", "done", "abort"]
#: ``refs``: creating a savepoint's refs; ``restore``: moving HEAD/branch and files to a
#: savepoint; ``drop``: deleting (or keeping) savepoint refs, then closing; ``check``: a
#: tdd check runs (no lock held, nothing changed yet); ``commit``: a tdd commit object
#: exists and HEAD is being moved to it.
Phase = Literal["refs", "restore", "drop", "check", "commit"]
Condition = Literal["open", "busy", "abandoned"]


class Owner(BaseModel):
    """The process doing a step (or holding a library transaction open)."""

    pid: int
    host: str
    start: int | None = None
    agent: str | None = None
    command: str = ""
    since: float

    @classmethod
    def current(cls, agent: str | None, command: str) -> Owner:
        me = ProcessIdentity.current()
        return cls(pid=me.pid, host=me.host, start=me.start, agent=agent, command=command, since=time.time())

    def is_dead(self) -> bool:
        """Provably gone (same host, pid dead or recycled); another host's owner never is."""
        return ProcessIdentity(pid=self.pid, host=self.host, start=self.start).is_dead()

    def is_me(self) -> bool:
        return self.pid == os.getpid() and self.host == this_host()

    def describe(self) -> str:
        who = f"pid {self.pid}" + (f" on {self.host}" if self.host != this_host() else "")
        if self.agent:
            who += f" (agent {self.agent})"
        return who + (f" running `{self.command}`" if self.command else "")


class HeadState(BaseModel):
    """Where HEAD was: a commit (``None``: unborn) and the branch it was attached to."""

    commit: str | None
    ref: str | None  # refs/heads/<branch>; None: detached


class SavepointRecord(BaseModel):
    name: str
    head: HeadState
    snapshot: str  # W commit: every not-ignored file
    snapshot_index: str  # I commit: the index
    ref: str | None  # savepoint ref at head.commit (None when HEAD was unborn)
    snapshot_ref: str
    created: float

    def refs(self) -> dict[str, str]:
        """The refs this savepoint owns and the values they must hold."""
        found = {self.snapshot_ref: self.snapshot}
        if self.ref is not None and self.head.commit is not None:
            found[self.ref] = self.head.commit
        return found


class Step(BaseModel):
    """A step in progress, recorded before it starts (write-ahead)."""

    op: Op
    phase: Phase
    owner: Owner
    started: float
    savepoint: SavepointRecord | None = None  # refs phase: the savepoint being created
    target: str | None = None  # restore: the savepoint rolled back to
    before: HeadState | None = None  # HEAD when the step began
    branch_before: str | None = None  # restore: the target branch's value when the step began
    drop: list[str] = Field(default_factory=list)  # savepoints whose refs go after restore
    close: bool = False  # the transaction ends with this step
    keep_until: float | None = None  # drop: keep the refs (audit/undo) until then instead of deleting
    end_tdd: bool = False  # the TDD sequence ends with this step
    paths: list[str] = Field(default_factory=list)  # tdd: paths committed (relative to the worktree)
    index_tree: str | None = None  # tdd: the index as a tree when the check started
    tree: str | None = None  # tdd: HEAD + paths, what gets committed
    commit: str | None = None  # tdd commit phase: the commit HEAD moves to
    check: str | None = None
    failed: str | None = None  # the live process gave up on this step (an error); recover finishes it


class TddState(BaseModel):
    step: Literal["started", "red", "green", "refactor"]
    start: str  # the savepoint green failure and abort roll back to
    owns_tx: bool  # red began the transaction: done commits it, abort rolls it back
    commits: list[str] = Field(default_factory=list)
    passing: str | None = None  # savepoint of the last passing commit (refactor failure target)
    refactors: int = 0


class TxRecord(BaseModel):
    tx_id: str
    name: str | None = None
    namespace: str
    agent: str | None = None
    worktree_id: str
    worktree: str
    kind: Literal["tx", "tdd"] = "tx"
    created: float
    holder: Owner | None = None  # a library `with` block holding it open; None: CLI, detached
    savepoints: list[SavepointRecord] = Field(default_factory=list)
    tdd: TddState | None = None
    step: Step | None = None

    def savepoint(self, name: str) -> SavepointRecord | None:
        return next((sp for sp in self.savepoints if sp.name == name), None)

    def label(self) -> str:
        return self.tx_id + (f" ({self.name})" if self.name else "")


class KeptRefs(BaseModel):
    """Savepoint refs of a committed transaction kept for audit/undo until *expires*."""

    tx_id: str
    refs: dict[str, str]
    expires: float


class Finished(BaseModel):
    tx_id: str
    name: str | None = None
    outcome: str
    at: float


class Journal(StateModel):
    KIND: ClassVar[str] = "journal"
    SCHEMA: ClassVar[int] = journal_reader.SCHEMA

    worktree_id: str = ""
    tx: TxRecord | None = None
    kept: list[KeptRefs] = Field(default_factory=list)
    history: list[Finished] = Field(default_factory=list)

    def finish(self, outcome: str) -> None:
        """End the transaction, remembering how (bounded history for status and audit)."""
        if self.tx is not None:
            self.history.append(Finished(tx_id=self.tx.tx_id, name=self.tx.name, outcome=outcome, at=time.time()))
            self.history = self.history[-HISTORY_LIMIT:]
        self.tx = None


file_name = journal_reader.file_name


class JournalFile:
    """The journal of one worktree; :meth:`write` is one durable step."""

    def __init__(self, repo: Repo, worktree_id: str) -> None:
        self.worktree_id = worktree_id
        self.file: StateFile[Journal] = repo.state_file(file_name(worktree_id), Journal)

    def load(self) -> Journal:
        """The journal, repaired from its backup if needed (caller holds the worktree lock)."""
        journal = self.file.load(repair=True)
        journal.worktree_id = self.worktree_id
        return journal

    def peek(self) -> Journal:
        """Read without the lock (status, list, the pre-commit hook)."""
        return self.file.load()

    def write(self, journal: Journal) -> None:
        """Make *journal* durable, then count it as a step (the test-only crash switch fires here)."""
        self.file.save(journal)
        faults.journal_step()


def condition(tx: TxRecord) -> Condition:
    """``busy``: a live process is in a step; ``abandoned``: its step's or holder's process died."""
    if tx.step is not None:
        return "abandoned" if tx.step.failed or tx.step.owner.is_dead() else "busy"
    if tx.holder is not None and tx.holder.is_dead():
        return "abandoned"
    return "open"


def journal_ids(repo: Repo) -> list[str]:
    """Worktree ids that have a journal file (or only its backup)."""
    folder = repo.state_dir / "state"
    if not folder.is_dir():
        return []
    names = {p.name.removesuffix(".bak") for p in folder.glob(journal_reader.JOURNAL_GLOB + "*")}
    return sorted(wid for wid in map(journal_reader.worktree_id_of, names) if wid is not None)


def all_journals(repo: Repo) -> dict[str, Journal]:
    """Every readable worktree journal (no locks), by worktree id.

    An unreadable one (damaged, no good backup) is skipped here: ``status`` reports it
    under state files and ``recover`` reports it as a problem.
    """
    found: dict[str, Journal] = {}
    for worktree_id in journal_ids(repo):
        try:
            journal = JournalFile(repo, worktree_id).peek()
        except StateError:
            continue
        journal.worktree_id = worktree_id
        found[worktree_id] = journal
    return found


def commit_blocker(repo: Repo, worktree_id: str) -> str | None:
    """Why a commit in *worktree_id* must be refused now, or ``None`` (the pre-commit hook asks).

    Cheap on purpose (one small file read, no git, no lock): a commit landing while
    gitxact rolls the worktree back, or before ``recover`` has repaired an interrupted
    step, would be overwritten or would confuse the repair. The rule is defined once, in
    :func:`gitxact.tx.journal_reader.commit_blocker`, which the hook runs without pydantic.
    """
    return journal_reader.commit_blocker(os.fspath(repo.layout.common_dir), worktree_id)
