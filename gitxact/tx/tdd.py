"""TDD sequences: red (commit a failing test), green (make it pass), refactor, done, abort.

A sequence is a transaction (``red`` begins one if none is open, or joins the open
one with a ``tdd-start`` savepoint). Each step: under the worktree lock, compute the
commit's tree (HEAD + PATHs, :mod:`gitxact.tx.staging`) and journal "check running";
release every lock and run the check (it may take minutes and must not block other
agents' repository-wide work); re-take the worktree lock and verify that HEAD, the
index and the PATHs are exactly as they were (compare-and-swap) before committing.

Verdicts:

* red: the check must fail, and fail as tests fail. If it passes, **times out** (a hang
  is not a failing test), or exits in a way that says it never judged a test (a signal,
  pytest's codes 2-5, a code not in ``--red-exit``: :meth:`CheckResult.not_a_failure`),
  nothing is committed and the step is refused (exit 3). One that could not run (126/127)
  commits nothing (exit 2).
* green / refactor: the check must pass; a failure or a timeout rolls back — green to
  the sequence's start, refactor to the last passing commit — and exits 1.
* A check interrupted by Ctrl-C/SIGTERM gives no verdict: nothing is committed or
  rolled back (exit 130).
* ``done`` is refused while the sequence is at red (its test still fails).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError, OperationFailedError, RefusedError, UsageError
from gitxact.git import snapshots
from gitxact.tx import checks, journaled, staging, tdd_journaled
from gitxact.tx.journal import Step, TddState, TxRecord
from gitxact.tx.tdd_journaled import StepName
from gitxact.tx.transactions import NoTransactionError, Transactions

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

    from gitxact.core.repo import Repo
    from gitxact.tx.journaled import Ctx


class CheckFailedError(OperationFailedError):
    """green/refactor: the check did not pass, so the sequence was rolled back (exit 1)."""


class NotAFailingTestError(RefusedError):
    """red: the check failed, but not because tests failed (exit 3): nothing was committed."""


class CheckInterruptedError(GitxactError):
    """The check was interrupted before it gave a verdict (exit 130, like a shell)."""

    exit_code = 130


@dataclass(frozen=True)
class TddResult:
    tx: TxRecord
    step: str
    commit: str | None = None
    check: checks.CheckResult | None = None


def _sequence(ctx: Ctx, wanted: tuple[str, ...], command: str) -> tuple[TxRecord, TddState]:
    """The open sequence, if *command* may act on it now (exists, not busy, right step)."""
    tx = ctx.journal.tx
    if tx is None or tx.tdd is None:
        raise NoTransactionError("no TDD sequence is open in this worktree", hint="start one with `gitxact tdd red`")
    Transactions(ctx.repo).open_tx_for_caller(ctx)
    if tx.tdd.step not in wanted:
        after = {"started": "tdd red", "red": "tdd green (or tdd abort)", "green": "tdd refactor, tdd done"}
        raise RefusedError(
            f"`{command}` does not follow step {tx.tdd.step!r} of the TDD sequence in {tx.label()}",
            hint=f"next: {after.get(tx.tdd.step, 'tdd refactor, tdd done')}",
        )
    return tx, tx.tdd


def run_step(
    repo: Repo,
    op: StepName,
    spec: checks.CheckSpec,
    paths: Sequence[str],
    *,
    message: str | None = None,
    hold: bool = False,
    echo: checks.Echo | None = checks.stderr_echo,
) -> TddResult:
    """One red/green/refactor step, as described in the module docstring."""
    rel = staging.resolve_paths(repo, paths)
    text = tdd_journaled.message_for(op, rel, spec, message)
    txs = Transactions(repo)
    with txs.session(f"tdd {op}") as ctx:
        if op == "red":
            _may_start(ctx)
        else:
            _sequence(ctx, ("red",) if op == "green" else ("green", "refactor"), f"tdd {op}")
        step = tdd_journaled.check_step(ctx, op, rel, spec, tdd_journaled.prepare(ctx, op, rel))
        if op == "red":
            _start_sequence(ctx, hold, step)
        else:
            ctx.tx.step = step
            ctx.write()
    label = f"{repo.layout.worktree_id}-{op}"
    try:
        result = checks.run(spec, cwd=repo.layout.start, log_dir=repo.log_dir(), label=label, echo=echo)
    except BaseException:
        with txs.session(f"tdd {op}") as ctx:
            tdd_journaled.reclaim(ctx, step)
            tdd_journaled.clear_check(ctx, op)
        raise
    with txs.session(f"tdd {op}") as ctx:
        tx = tdd_journaled.reclaim(ctx, step)
        if result.interrupted or result.not_runnable:
            tdd_journaled.clear_check(ctx, op)
            if result.interrupted:
                raise CheckInterruptedError(f"the check was interrupted; nothing was committed (log: {result.log})")
            raise UsageError(
                f"the check could not be run (exit {result.returncode}); nothing was committed",
                hint=f"see {result.log}",
            )
        if op == "red" and (result.passed or result.timed_out):
            tdd_journaled.clear_check(ctx, op)
            reason = "the test does not fail: it tests nothing new"
            if result.timed_out:
                reason = f"the check {result.describe()}: a hang is not a failing test"
            raise RefusedError(f"{reason}; nothing was committed", hint=f"check output: {result.log}")
        if op == "red" and (why := result.not_a_failure()) is not None:
            tdd_journaled.clear_check(ctx, op)
            raise NotAFailingTestError(
                f"the check {result.describe()}, which is not a failing test: {why}; nothing was committed"
                f" (check output: {result.log})",
                hint=_red_exit_hint(result),
            )
        if op != "red" and not result.passed:
            saved = _roll_back_failed(ctx, op)
            where = "its start" if op == "green" else "the last passing commit"
            raise CheckFailedError(
                f"the check {result.describe()}: the TDD sequence was rolled back to {where}"
                f" (what it undid is kept in {saved})",
                hint=f"check output: {result.log}",
            )
        changed = tdd_journaled.changed_during_check(ctx, step)
        if changed is not None:
            tdd_journaled.clear_check(ctx, op)
            raise OperationFailedError(
                f"{changed} while the check ran; nothing was committed", hint="retry when the worktree is quiet"
            )
        commit = staging.commit_tree(ctx.repo, str(step.tree), step.before.commit if step.before else None, text)
        tx.step = step.model_copy(update={"phase": "commit", "commit": commit})
        ctx.write()
        tdd_journaled.finish_commit(ctx)
        return TddResult(tx=tx, step=op, commit=commit, check=result)


def _red_exit_hint(result: checks.CheckResult) -> str:
    """What to do about a refused red: usually fix the check; ``--red-exit`` if the code does mean failed tests."""
    code, spec = result.returncode, result.spec
    if code == 2 and spec.runner == "pytest" and spec.red_exit is None:  # pytest's INTERRUPTED, as collection says it
        return "a test module that cannot import yet fails at collection: import inside the test, or --red-exit 1,2"
    if spec.red_exit is not None:
        return f"if exit {code} also means the tests failed, add it to --red-exit"
    return f"fix the check so that it runs the tests; if exit {code} does mean they failed, pass --red-exit {code}"


def _may_start(ctx: Ctx) -> None:
    """red starts a sequence: refused while one is open or the transaction is busy."""
    tx = ctx.journal.tx
    if tx is None:
        return
    Transactions(ctx.repo).open_tx_for_caller(ctx)
    if tx.tdd is not None:
        raise RefusedError(
            f"a TDD sequence is already open in {tx.label()} (at {tx.tdd.step})",
            hint="continue it (tdd green / refactor) or end it (tdd done / tdd abort)",
        )


def _start_sequence(ctx: Ctx, hold: bool, check: Step) -> None:
    """Begin (or join) the transaction; the check step is journaled in the same write."""
    if ctx.journal.tx is None:
        journaled.expire_kept(ctx)
        tdd = TddState(step="started", start="start", owns_tx=True)
        journaled.begin(ctx, name=None, kind="tdd", holder=ctx.owner if hold else None, tdd=tdd, next_step=check)
        return
    tdd = TddState(step="started", start="tdd-start", owns_tx=False)
    journaled.add_savepoint(ctx, "tdd-start", tdd=tdd, next_step=check)


def _roll_back_failed(ctx: Ctx, op: StepName) -> str:
    """Roll back after a failed check; first keep what the rollback undoes, and say where.

    Unlike ``tx rollback`` or ``tdd abort``, nobody asked to throw this work away: the
    check decided. So the worktree as it is (HEAD with the sequence's commits, the index,
    every file, the failing code included) is saved to a snapshot ref first.
    """
    tdd = ctx.tx.tdd
    assert tdd is not None  # noqa: S101 - _sequence checked it
    tx = ctx.tx
    saved = snapshots.save(
        ctx.repo.layout.common_dir,
        ctx.repo.layout.require_worktree(),
        f"{tx.namespace}/undone/{tx.tx_id}-{op}",
        f"work undone by the failed {op} check of {tx.label()}",
        ctx.repo.locks.child_env(),
    )
    if op == "green" or tdd.passing is None:
        journaled.rollback(ctx, tdd.start, op=op, close=tdd.owns_tx, drop_target=True, end_tdd=True)
    else:
        journaled.rollback(ctx, tdd.passing, op=op, close=False)
    return saved


def done(repo: Repo) -> TxRecord:
    """Close the sequence keeping its commits (and the transaction, if red began it)."""
    txs = Transactions(repo)
    with txs.session("tdd done") as ctx:
        tx, tdd = _sequence(ctx, ("green", "refactor"), "tdd done")
        if tdd.owns_tx:
            journaled.expire_kept(ctx)
            return journaled.close(ctx, op="done")
        names = [sp.name for sp in tx.savepoints if sp.name.startswith("tdd-")]
        journaled.drop(ctx, names, op="done", close=False, end_tdd=True)
        return tx


def abort(repo: Repo) -> TxRecord:
    """Roll the whole sequence back to its start: HEAD, branch, index and files."""
    txs = Transactions(repo)
    with txs.session("tdd abort") as ctx:
        tx, tdd = _sequence(ctx, ("started", "red", "green", "refactor"), "tdd abort")
        journaled.rollback(ctx, tdd.start, op="abort", close=tdd.owns_tx, drop_target=True, end_tdd=True)
        return tx


class TddSequence:
    """``with ws.tdd(check="pytest -q") as seq: seq.red([...]); seq.green([...])``.

    The block ends with ``done`` (or rolls the sequence back if it raised, or if it
    ended still at red). Inside the block this process holds the transaction, so if
    it dies there ``gitxact recover`` rolls the sequence back.
    """

    def __init__(
        self,
        repo: Repo,
        check: checks.Check | None = None,
        *,
        shell: bool = False,
        timeout: float | None = None,
        red_exit: Collection[int] | None = None,
        echo: checks.Echo | None = checks.stderr_echo,
    ) -> None:
        self.repo = repo
        self.check = check
        self.shell = shell
        self.red_exit = None if red_exit is None else frozenset(red_exit)
        self.timeout = repo.settings.check_timeout if timeout is None else timeout
        self.echo = echo
        self._held = False

    def _spec(self, check: checks.Check | None) -> checks.CheckSpec:
        command = check or self.check
        if command is None:
            raise UsageError("no check command given", hint="pass check=... to ws.tdd() or to the step")
        return checks.parse(command, shell=self.shell, timeout=self.timeout, red_exit=self.red_exit)

    def _step(self, op: StepName, paths: Sequence[str], check: checks.Check | None, message: str | None) -> TddResult:
        return run_step(self.repo, op, self._spec(check), paths, message=message, hold=self._held, echo=self.echo)

    def red(self, paths: Sequence[str], *, check: checks.Check | None = None, message: str | None = None) -> TddResult:
        return self._step("red", paths, check, message)

    def green(
        self, paths: Sequence[str], *, check: checks.Check | None = None, message: str | None = None
    ) -> TddResult:
        return self._step("green", paths, check, message)

    def refactor(
        self, paths: Sequence[str], *, check: checks.Check | None = None, message: str | None = None
    ) -> TddResult:
        return self._step("refactor", paths, check, message)

    def done(self) -> TxRecord:
        return done(self.repo)

    def abort(self) -> TxRecord:
        return abort(self.repo)

    def __enter__(self) -> TddSequence:
        self._held = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._held = False
        tx = Transactions(self.repo).current()
        if tx is None or tx.tdd is None or tx.holder is None or not tx.holder.is_me():
            return
        if exc_type is not None:
            abort(self.repo)
        elif tx.tdd.step in ("green", "refactor"):
            done(self.repo)
        else:
            abort(self.repo)
            raise RefusedError("the TDD block ended at red (its test still fails); the sequence was rolled back")
