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
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

from gitxact.errors import StateError
from gitxact.state.record import (
    FLAG,
    INTEGER,
    NUMBER,
    OPTIONAL_INTEGER,
    OPTIONAL_NUMBER,
    OPTIONAL_STRING,
    STRING,
    STRING_MAP,
    STRINGS,
    Record,
    field,
    list_of,
    one_of,
    optional,
    record,
)
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
TddStep = Literal["started", "red", "green", "refactor"]
TxKind = Literal["tx", "tdd"]


class Owner(Record):
    """The process doing a step (or holding a library transaction open)."""

    pid: int = field(INTEGER)
    host: str = field(STRING)
    start: int | None = field(OPTIONAL_INTEGER, default=None)
    agent: str | None = field(OPTIONAL_STRING, default=None)
    command: str = field(STRING, default="")
    since: float = field(NUMBER)

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


class HeadState(Record):
    """Where HEAD was: a commit (``None``: unborn) and the branch it was attached to."""

    commit: str | None = field(OPTIONAL_STRING)
    ref: str | None = field(OPTIONAL_STRING)  # refs/heads/<branch>; None: detached


class SavepointRecord(Record):
    name: str = field(STRING)
    head: HeadState = field(record(HeadState))
    snapshot: str = field(STRING)  # W commit: every not-ignored file
    snapshot_index: str = field(STRING)  # I commit: the index
    ref: str | None = field(OPTIONAL_STRING)  # savepoint ref at head.commit (None when HEAD was unborn)
    snapshot_ref: str = field(STRING)
    created: float = field(NUMBER)

    def refs(self) -> dict[str, str]:
        """The refs this savepoint owns and the values they must hold."""
        found = {self.snapshot_ref: self.snapshot}
        if self.ref is not None and self.head.commit is not None:
            found[self.ref] = self.head.commit
        return found


class Step(Record):
    """A step in progress, recorded before it starts (write-ahead)."""

    op: Op = field(one_of(*get_args(Op)))
    phase: Phase = field(one_of(*get_args(Phase)))
    owner: Owner = field(record(Owner))
    started: float = field(NUMBER)
    savepoint: SavepointRecord | None = field(optional(record(SavepointRecord)), default=None)  # refs phase
    target: str | None = field(OPTIONAL_STRING, default=None)  # restore: the savepoint rolled back to
    before: HeadState | None = field(optional(record(HeadState)), default=None)  # HEAD when the step began
    #: restore: the target branch's value when the step began.
    branch_before: str | None = field(OPTIONAL_STRING, default=None)
    drop: list[str] = field(STRINGS, default=[])  # savepoints whose refs go after restore
    close: bool = field(FLAG, default=False)  # the transaction ends with this step
    #: drop: keep the refs (audit/undo) until then instead of deleting.
    keep_until: float | None = field(OPTIONAL_NUMBER, default=None)
    end_tdd: bool = field(FLAG, default=False)  # the TDD sequence ends with this step
    paths: list[str] = field(STRINGS, default=[])  # tdd: paths committed (relative to the worktree)
    index_tree: str | None = field(OPTIONAL_STRING, default=None)  # tdd: the index as a tree when the check started
    tree: str | None = field(OPTIONAL_STRING, default=None)  # tdd: HEAD + paths, what gets committed
    commit: str | None = field(OPTIONAL_STRING, default=None)  # tdd commit phase: the commit HEAD moves to
    check: str | None = field(OPTIONAL_STRING, default=None)
    #: The live process gave up on this step (an error); recover finishes it.
    failed: str | None = field(OPTIONAL_STRING, default=None)


class TddState(Record):
    step: TddStep = field(one_of(*get_args(TddStep)))
    start: str = field(STRING)  # the savepoint green failure and abort roll back to
    owns_tx: bool = field(FLAG)  # red began the transaction: done commits it, abort rolls it back
    commits: list[str] = field(STRINGS, default=[])
    passing: str | None = field(OPTIONAL_STRING, default=None)  # savepoint of the last passing commit
    refactors: int = field(INTEGER, default=0)


class TxRecord(Record):
    tx_id: str = field(STRING)
    name: str | None = field(OPTIONAL_STRING, default=None)
    namespace: str = field(STRING)
    agent: str | None = field(OPTIONAL_STRING, default=None)
    worktree_id: str = field(STRING)
    worktree: str = field(STRING)
    kind: TxKind = field(one_of(*get_args(TxKind)), default="tx")
    created: float = field(NUMBER)
    #: A library ``with`` block holding it open; None: CLI, detached.
    holder: Owner | None = field(optional(record(Owner)), default=None)
    savepoints: list[SavepointRecord] = field(list_of(SavepointRecord), default=[])
    tdd: TddState | None = field(optional(record(TddState)), default=None)
    step: Step | None = field(optional(record(Step)), default=None)

    def savepoint(self, name: str) -> SavepointRecord | None:
        return next((sp for sp in self.savepoints if sp.name == name), None)

    def label(self) -> str:
        return self.tx_id + (f" ({self.name})" if self.name else "")


class KeptRefs(Record):
    """Savepoint refs of a committed transaction kept for audit/undo until *expires*."""

    tx_id: str = field(STRING)
    refs: dict[str, str] = field(STRING_MAP)
    expires: float = field(NUMBER)


class Finished(Record):
    tx_id: str = field(STRING)
    name: str | None = field(OPTIONAL_STRING, default=None)
    outcome: str = field(STRING)
    at: float = field(NUMBER)


class Journal(Record):
    KIND: ClassVar[str] = "journal"
    SCHEMA: ClassVar[int] = journal_reader.SCHEMA
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    worktree_id: str = field(STRING, default="")
    tx: TxRecord | None = field(optional(record(TxRecord)), default=None)
    kept: list[KeptRefs] = field(list_of(KeptRefs), default=[])
    history: list[Finished] = field(list_of(Finished), default=[])

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
