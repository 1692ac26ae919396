"""Transactions: begin, savepoint, rollback, commit, list; and ``with ws.transaction()``.

One transaction may be open per worktree; different worktrees run theirs in
parallel, because every step takes only the worktree's own lock. A transaction
outlives the process that began it (the CLI runs each command as its own process);
the journal (:mod:`gitxact.tx.journal`) carries it.

Semantics:

* ``rollback`` without ``--to`` restores the start and *ends* the transaction (SQL's
  ROLLBACK); ``rollback --to NAME`` restores NAME, drops later savepoints and keeps the
  transaction open (SQL's ROLLBACK TO SAVEPOINT).
* A savepoint records HEAD *and its branch*: rolling back re-attaches HEAD to that
  branch (or detaches it, if it was detached) and moves that branch back. Other
  branches created or moved meanwhile are not part of the savepoint and are left alone.
* ``commit`` drops the savepoint refs, or keeps them ``gitxact.savepointKeep`` seconds;
  expired ones are deleted at the next ``begin``/``commit`` in that worktree and by
  ``gitxact recover``.
* When ``GITXACT_AGENT`` is set it must match the agent that began the transaction
  (and the worktree's lease owner), so one agent cannot roll back another's work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError, InvalidNameError, OperationFailedError, RefusedError, UsageError
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.tx import journaled
from gitxact.tx.journal import JournalFile, Owner, SavepointRecord, TxRecord, condition
from gitxact.tx.journaled import Ctx
from gitxact.util.names import validate_name

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

#: Savepoint names gitxact uses itself: ``start`` (the transaction's start) and ``tdd-*``.
RESERVED = ("start",)
RESERVED_PREFIX = "tdd-"


class NoTransactionError(OperationFailedError):
    """There is no open transaction to act on in this worktree."""


def refuse_busy(tx: TxRecord) -> None:
    """Refuse (exit 3) to act on a transaction that is interrupted, busy or held by another process."""
    state = condition(tx)
    where = f"worktree {tx.worktree_id!r}"
    if state == "abandoned":
        what = f"`{tx.step.op}` ({tx.step.phase})" if tx.step else ""
        if tx.step is None and tx.holder is not None:
            what = f"the `with` block of {tx.holder.describe()}"
        reason = f": {tx.step.failed}" if tx.step and tx.step.failed else ""
        raise RefusedError(
            f"transaction {tx.label()} in {where} was interrupted in {what}{reason}",
            hint="run `gitxact recover` to finish or roll it back",
        )
    if state == "busy" and tx.step is not None:
        raise RefusedError(
            f"{where} is busy: {tx.step.owner.describe()} is in `{tx.step.op}` ({tx.step.phase}) "
            f"of transaction {tx.label()}",
            hint="wait for it to finish, then retry",
        )
    if tx.holder is not None and not tx.holder.is_me():
        raise RefusedError(
            f"transaction {tx.label()} in {where} is held open by {tx.holder.describe()}",
            hint="that process commits or rolls it back when its `with` block ends",
        )


class Transactions:
    """The transactions of one worktree (``ws.transactions``)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    # -- plumbing ------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self, command: str) -> Iterator[Ctx]:
        """The worktree lock, the journal loaded under it, and this process as the step owner."""
        repo = self.repo
        repo.layout.require_worktree()
        self._check_agent_boundary()
        with repo.worktree_lock():
            jf = JournalFile(repo, repo.layout.worktree_id)
            ctx = Ctx(repo, jf, jf.load(), Owner.current(repo.agent, command))
            with marking_failures(ctx):
                yield ctx

    def _check_agent_boundary(self) -> None:
        agent = self.repo.agent
        token = lease_reader.env_token()
        if agent is None and token is None:
            return
        lease = leases.for_path(self.repo, self.repo.layout.require_worktree())
        why = None if lease is None else lease_reader.trespass(lease.agent, lease.token_hash, agent, token)
        if why is not None:
            raise RefusedError(
                f"worktree {self.repo.layout.worktree}: {why}",
                hint=f"check {lease_reader.TOKEN_ENV} and GITXACT_AGENT; run transactions in your own worktree",
            )

    def open_tx_for_caller(self, ctx: Ctx) -> TxRecord:
        """The open transaction, if this process may act on it; otherwise raise why not."""
        tx = ctx.journal.tx
        if tx is None:
            raise NoTransactionError(
                f"no transaction is open in worktree {self.repo.layout.worktree_id!r}",
                hint="start one with `gitxact tx begin`",
            )
        refuse_busy(tx)
        if self.repo.agent and tx.agent and tx.agent != self.repo.agent:
            raise RefusedError(f"transaction {tx.label()} belongs to agent {tx.agent!r}, not {self.repo.agent!r}")
        return tx

    def refuse_open(self, ctx: Ctx) -> None:
        """Before a new transaction: none may be open (or interrupted) in this worktree."""
        tx = ctx.journal.tx
        if tx is None:
            return
        refuse_busy(tx)
        raise RefusedError(
            f"transaction {tx.label()} is already open in worktree {tx.worktree_id!r}"
            + (f" (agent {tx.agent})" if tx.agent else ""),
            hint="finish it first: `gitxact tx commit` or `gitxact tx rollback`"
            + (" (or `gitxact tdd done` / `tdd abort`)" if tx.tdd else ""),
        )

    # -- operations ------------------------------------------------------------------------

    def begin(self, name: str | None = None, *, hold: bool = False) -> TxRecord:
        """Open a transaction: savepoint ``start`` = HEAD + index + files. ``hold``: this process owns it."""
        if name is not None:
            validate_name(name, "transaction name")
        with self.session("tx begin") as ctx:
            self.refuse_open(ctx)
            journaled.expire_kept(ctx)
            return journaled.begin(ctx, name=name, kind="tx", holder=ctx.owner if hold else None)

    def savepoint(self, name: str) -> SavepointRecord:
        validate_name(name, "savepoint name")
        if name in RESERVED or name.startswith(RESERVED_PREFIX):
            raise InvalidNameError(f"savepoint name {name!r} is reserved", hint="pick another name")
        with self.session("tx savepoint") as ctx:
            tx = self.open_tx_for_caller(ctx)
            if tx.savepoint(name) is not None:
                raise UsageError(f"transaction {tx.label()} already has a savepoint {name!r}", hint="pick another name")
            return journaled.add_savepoint(ctx, name)

    def rollback(self, to: str | None = None) -> tuple[TxRecord, SavepointRecord, bool]:
        """Restore savepoint *to* (default: the start, ending the transaction). Returns (tx, savepoint, closed)."""
        with self.session("tx rollback") as ctx:
            tx = self.open_tx_for_caller(ctx)
            names = [sp.name for sp in tx.savepoints]
            if to is not None and to not in names:
                raise UsageError(
                    f"transaction {tx.label()} has no savepoint {to!r}", hint=f"its savepoints: {', '.join(names)}"
                )
            end_tdd = False
            if to is not None and tx.tdd is not None:
                if names.index(to) > names.index(tx.tdd.start):
                    raise RefusedError(
                        f"savepoint {to!r} lies inside the TDD sequence of {tx.label()}",
                        hint="use `gitxact tdd abort`, or roll back to the sequence's start or before",
                    )
                end_tdd = True
            target = to or "start"
            sp = journaled.rollback(ctx, target, op="rollback", close=to is None, end_tdd=end_tdd)
            return tx, sp, to is None

    def commit(self) -> TxRecord:
        """Close the transaction, keeping its commits."""
        with self.session("tx commit") as ctx:
            tx = self.open_tx_for_caller(ctx)
            if tx.tdd is not None and tx.tdd.step in ("started", "red"):
                raise RefusedError(
                    f"the TDD sequence of {tx.label()} is at red: its test still fails",
                    hint="make it pass (`gitxact tdd green`) or undo it (`gitxact tdd abort`)",
                )
            journaled.expire_kept(ctx)
            return journaled.close(ctx, op="commit")

    def current(self) -> TxRecord | None:
        """This worktree's open transaction (read without the lock)."""
        return JournalFile(self.repo, self.repo.layout.worktree_id).peek().tx


@contextlib.contextmanager
def marking_failures(ctx: Ctx) -> Iterator[None]:
    """If a step of this process fails half-way, mark it so ``recover`` may finish it.

    Without the mark a long-lived library process whose step raised would look
    *busy* (its owner is alive) forever; with it the step counts as interrupted.
    """
    try:
        yield
    except BaseException as exc:
        tx = ctx.journal.tx
        if tx is not None and tx.step is not None and tx.step.owner.is_me() and tx.step.phase != "check":
            tx.step.failed = exc.message if isinstance(exc, GitxactError) else f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(GitxactError, OSError):
                ctx.jf.file.save(ctx.journal)
        raise


class Transaction:
    """``with ws.transaction() as tx:`` commits when the block ends, rolls back if it raises.

    The journal records this process as the transaction's holder, so if the process
    dies inside the block, ``gitxact recover`` rolls the transaction back.
    """

    def __init__(self, transactions: Transactions, name: str | None = None) -> None:
        self.transactions = transactions
        self.name = name
        self.record: TxRecord | None = None

    def __enter__(self) -> Transaction:
        self.record = self.transactions.begin(self.name, hold=True)
        return self

    @property
    def tx_id(self) -> str:
        if self.record is None:
            raise OperationFailedError("the transaction has not begun")
        return self.record.tx_id

    @property
    def is_open(self) -> bool:
        current = self.transactions.current()
        return self.record is not None and current is not None and current.tx_id == self.record.tx_id

    def savepoint(self, name: str) -> SavepointRecord:
        return self.transactions.savepoint(name)

    def rollback(self, to: str | None = None) -> None:
        self.transactions.rollback(to)

    def commit(self) -> None:
        self.transactions.commit()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.is_open:
            return
        if exc_type is None:
            self.transactions.commit()
        else:
            self.transactions.rollback()
