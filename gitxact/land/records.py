"""The landing queue's write-ahead record: ``state/landing.json``, changed under resource lock ``landing``.

Every request to land a branch is filed here before it waits, and every step that can
leave something behind (a temporary worktree, a fetched ref, a moved target) is written
here *before* it is taken, with what is needed to finish or undo it. A request therefore
ends ``landed``, ``refused`` or ``failed``, never half: the process serving it, the next
one to hold the queue, or ``gitxact recover`` finishes what a dead process began
(:mod:`gitxact.land.recovery`).

Two kinds of lock meet here. The queue of one target is the resource lock
``land.<slug>`` (its FIFO tickets order the landers); this file is the resource lock
``landing``, taken for a moment only. ``land.*`` sorts before ``landing``, so a lander
holding its queue may update this file without breaking the lock order.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, ClassVar, Literal, get_args

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
    dict_of,
    field,
    list_of,
    one_of,
    optional,
    record,
)
from gitxact.state.store import StateFile
from gitxact.tx.journal import Owner
from gitxact.util import faults

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

FILE_NAME = "landing.json"
LOCK = "landing"
#: Finished requests kept for ``land --status`` and for a requester that reads its outcome late.
HISTORY_LIMIT = 50
#: Seconds an outcome is kept past the history limit while its requester lives (and may not have read it).
KEEP_UNREAD = 3600.0

Strategy = Literal["rebase", "merge"]
RequestState = Literal["pending", "serving", "landed", "refused", "failed", "withdrawn"]
#: ``build``: the temporary worktree is (being) made and the candidate built; ``check``: the
#: check runs in it; ``move``: the target is being moved to the candidate (compare-and-swap),
#: and the worktree that has it checked out follows; ``cleanup``:
#: the outcome is recorded, the temporary worktree and fetched ref are being removed.
Phase = Literal["build", "check", "move", "cleanup"]
FINAL: tuple[RequestState, ...] = ("landed", "refused", "failed", "withdrawn")


class CheckRecord(Record):
    """A request's check, as given (run by whichever process serves the request)."""

    argv: list[str] = field(STRINGS)
    display: str = field(STRING)
    shell: bool = field(FLAG)
    timeout: float | None = field(OPTIONAL_NUMBER)


class Outcome(Record):
    """How a request ended: what landed, or why not."""

    reason: str = field(STRING, default="")
    landed_tip: str | None = field(OPTIONAL_STRING, default=None)  # the target after this request landed
    #: The commits it put on the target (new ids when rebased).
    commits: list[str] = field(STRINGS, default=[])
    #: Which commit of the branch landed as which (original -> on the target; the same id
    #: when it was not rewritten): what release and prune-branches read back as "landed".
    landed_as: dict[str, str] = field(STRING_MAP, default={})
    already: bool = field(FLAG, default=False)  # the target already contained the branch: nothing to do
    conflicts: list[str] = field(STRINGS, default=[])
    check_log: str | None = field(OPTIONAL_STRING, default=None)
    attempts: int = field(INTEGER, default=0)
    batch: list[str] = field(STRINGS, default=[])  # requests checked together with it (ids)
    served_by: int | None = field(OPTIONAL_INTEGER, default=None)  # pid of the process that served it
    #: The exit code the requester reports: 0 landed, 3 refused, 1 failed, 2 bad input, 75 lock.
    code: int = field(INTEGER, default=0)
    #: Landed, but the worktree that has the target checked out did not follow.
    warning: str | None = field(OPTIONAL_STRING, default=None)


class Request(Record):
    id: str = field(STRING)
    seq: int = field(INTEGER)  # arrival order in the queue of its target
    queue: str = field(STRING)  # the resource lock of its target
    target: str = field(STRING)
    remote: str | None = field(OPTIONAL_STRING, default=None)
    branch: str = field(STRING)
    tip: str = field(STRING)  # the branch when the request was filed: what lands, even if the branch moves on
    strategy: Strategy = field(one_of(*get_args(Strategy)), default="rebase")
    check: CheckRecord | None = field(optional(record(CheckRecord)), default=None)
    batch: int = field(INTEGER, default=1)
    #: Candidates built and checked at once, each on the ones before it (land --parallel).
    parallel: int = field(INTEGER, default=1)
    #: Times a speculative round discarded its candidate and put it back in the queue.
    requeued: int = field(INTEGER, default=0)
    retries: int = field(INTEGER, default=5)
    owner: Owner = field(record(Owner))  # the requester: its death before its turn withdraws the request
    filed: float = field(NUMBER)
    state: RequestState = field(one_of(*get_args(RequestState)), default="pending")
    started: float | None = field(OPTIONAL_NUMBER, default=None)
    finished: float | None = field(OPTIONAL_NUMBER, default=None)
    outcome: Outcome | None = field(optional(record(Outcome)), default=None)

    def same_run(self, other: Request) -> bool:
        """Whether *other* can share a candidate (and so a check) with this request."""
        return (self.queue, self.remote, self.target, self.strategy, self.check) == (
            other.queue,
            other.remote,
            other.target,
            other.strategy,
            other.check,
        )


class Work(Record):
    """One attempt at landing some requests: the step in progress, written before it is taken."""

    id: str = field(STRING)
    queue: str = field(STRING)
    target: str = field(STRING)
    remote: str | None = field(OPTIONAL_STRING, default=None)
    requests: list[str] = field(STRINGS)
    phase: Phase = field(one_of(*get_args(Phase)))
    owner: Owner = field(record(Owner))  # the lander
    started: float = field(NUMBER)
    worktree: str = field(STRING)  # the temporary worktree's folder
    #: Remote targets: the fetched tip, under refs/gitxact/land/.
    fetch_ref: str | None = field(OPTIONAL_STRING, default=None)
    #: The target's tip the candidate was built on (the compare-and-swap's old value).
    base: str | None = field(OPTIONAL_STRING, default=None)
    candidate: str | None = field(OPTIONAL_STRING, default=None)  # the commit the check ran on and the target moves to
    #: sync: the worktree that has the (local) target checked out.
    checked_out: str | None = field(OPTIONAL_STRING, default=None)
    landed: dict[str, Outcome] = field(dict_of(Outcome), default={})  # cleanup: outcomes to record
    #: The lander gave up on an error; whoever holds the queue next finishes it.
    failed: str | None = field(OPTIONAL_STRING, default=None)


class Landing(Record):
    KIND: ClassVar[str] = "landing"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    next_seq: int = field(INTEGER, default=1)
    requests: list[Request] = field(list_of(Request), default=[])
    work: list[Work] = field(list_of(Work), default=[])

    def request(self, request_id: str) -> Request | None:
        return next((r for r in self.requests if r.id == request_id), None)

    def pending(self, queue: str) -> list[Request]:
        return sorted((r for r in self.requests if r.queue == queue and r.state == "pending"), key=lambda r: r.seq)

    def work_of(self, queue: str) -> list[Work]:
        return [w for w in self.work if w.queue == queue]

    def finish(self, request: Request, state: RequestState, outcome: Outcome) -> None:
        request.state = state
        request.outcome = outcome
        request.finished = time.time()
        done = sorted((r for r in self.requests if r.state in FINAL), key=lambda r: r.finished or 0.0)
        for old in done[: max(0, len(done) - HISTORY_LIMIT)]:
            # A requester still waiting for its turn has not read its outcome yet (another
            # lander served it): keep that one until its requester is gone.
            if old.owner.is_dead() or time.time() - (old.finished or 0.0) > KEEP_UNREAD:
                self.requests.remove(old)


class LandingFile:
    """``landing.json``; :meth:`change` is one durable step (the test-only crash switch fires after it).

    The queue of the file backend: requests and steps of this clone. With PostgreSQL
    chosen, :class:`gitxact.land.shared.SharedLanding` keeps the requests in the
    database and the steps here; the queue and lander speak to either through the
    same methods.
    """

    #: Whether other clones (hosts) share these requests: a remote target's request then
    #: carries its commits to the remote, since another clone may serve it.
    shared = False
    #: Seconds between two reads of a waiting requester's progress line.
    poll = 0.2

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.file: StateFile[Landing] = repo.state_file(FILE_NAME, Landing)

    def peek(self) -> Landing:
        """Read without the lock (progress, ``--status``): the atomic rename shows a whole generation."""
        return self.file.load()

    def find(self, request_id: str) -> Request | None:
        """One request, finished or not (its requester reads its outcome here)."""
        return self.peek().request(request_id)

    def queue_of(self, target: str, remote_url: str | None) -> str:
        """The queue (and lock) name of *target*: this clone's, on files."""
        return queue_name(target, remote_url)

    def holding(self, session: int | None) -> None:
        """Told which database session holds the queue's lock; nothing to record on files."""

    def publish_step(self, work: Work) -> None:
        """Make *work*'s step known beyond this clone before the target moves: nothing to do on files."""

    def settle_foreign(self, queue: str) -> list[str]:
        """Settle requests other clones' dead landers left serving: on files there are none."""
        return []

    def close(self) -> None:
        """Let go of connections: the file backend has none."""

    @contextmanager
    def change(self) -> Iterator[Landing]:
        """Read-modify-write under the ``landing`` lock; written when the block ends without error."""
        with self.repo.locks.resource(LOCK):
            state = self.file.load(repair=True)
            yield state
            self.file.save(state)
        faults.journal_step()


def queue_name(target: str, remote: str | None, *, clone: str | None = None) -> str:
    """The resource lock of one target's queue: ``land.<target>``, readable where the name allows.

    A lock name is a file name (``[A-Za-z0-9._-]``), so a target like ``release/2.0`` or a
    remote URL is shortened to its safe characters plus a hash of the whole, which keeps
    two targets that shorten alike apart. *clone* (PostgreSQL, a local target) keeps
    apart the local branches of one name in every clone of a namespace.
    """
    whole = f"{remote}\0{target}" if remote else target
    if clone is not None:
        whole = f"{clone}\0{whole}"
    plain = re.sub(r"[^A-Za-z0-9_-]+", "-", target).strip("-")[:40] or "target"
    if remote is None and clone is None and plain == target:
        return f"land.{plain}"
    return f"land.{plain}-{hashlib.sha256(whole.encode()).hexdigest()[:12]}"


def new_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(3)}"
