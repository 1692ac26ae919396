"""``gitxact tx begin/savepoint/rollback/commit/list``."""

from __future__ import annotations

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app, show, timeout_option


@click.group()
def tx() -> None:
    """Transactions: savepoints of HEAD, branch, index and files that you can roll back to.

    One transaction may be open per worktree; worktrees run theirs in parallel.
    Savepoints are refs under refs/gitxact/savepoints/<agent>/<tx-id>/ (plus a snapshot
    of uncommitted work under refs/gitxact/snapshots/), so gc never loses them.

    \b
    Examples:
      gitxact tx begin refactor-parser
      gitxact tx savepoint before-rename
      gitxact tx rollback --to before-rename
      gitxact tx commit
    """


@tx.command()
@click.argument("name", required=False)
@timeout_option
@json_option
@pass_app
def begin(app: AppContext, name: str | None, timeout: float | None, as_json: bool) -> int:
    """Open a transaction: savepoint `start` = HEAD + index + every not-ignored file.

    Refused (exit 3) while another transaction is open in this worktree, or while an
    interrupted one waits for `gitxact recover`.

    \b
    Example:
      gitxact tx begin my-change --json
    """
    from gitxact.tx.results import TxDoc

    doc = TxDoc.of(app.workspace(timeout=timeout).transactions.begin(name))
    if as_json:
        emit(doc)
    else:
        start = doc.savepoints[0]
        click.echo(f"began {doc.tx_id}" + (f" ({doc.name})" if doc.name else "") + f" in worktree {doc.worktree_id}")
        click.echo(f"  savepoint start: HEAD {(start.head or 'unborn')[:12]}, work in {start.snapshot_ref}")
    return 0


@tx.command()
@click.argument("name")
@timeout_option
@json_option
@pass_app
def savepoint(app: AppContext, name: str, timeout: float | None, as_json: bool) -> int:
    """Add savepoint NAME (HEAD + index + files now) to the open transaction.

    \b
    Example:
      gitxact tx savepoint tests-written
    """
    from gitxact.tx.results import SavepointDoc

    doc = SavepointDoc.of(app.workspace(timeout=timeout).transactions.savepoint(name))
    if as_json:
        click.echo(doc.model_dump_json(indent=2))
    else:
        click.echo(f"savepoint {doc.name}: HEAD {(doc.head or 'unborn')[:12]} ({doc.ref})")
    return 0


@tx.command()
@click.option("--to", "to", metavar="NAME", help="Roll back to this savepoint and keep the transaction open.")
@timeout_option
@json_option
@pass_app
def rollback(app: AppContext, to: str | None, timeout: float | None, as_json: bool) -> int:
    """Restore HEAD, its branch, the index and files exactly as at a savepoint.

    Without --to: back to the start, and the transaction ends. Files created since
    the savepoint are removed; ignored files are left alone.

    \b
    Examples:
      gitxact tx rollback
      gitxact tx rollback --to tests-written
    """
    from gitxact.tx.results import RollbackDoc

    record, sp, closed = app.workspace(timeout=timeout).transactions.rollback(to)
    doc = RollbackDoc(
        tx_id=record.tx_id, rolled_back_to=sp.name, closed=closed, head=sp.head.commit, branch=sp.head.ref
    )
    if as_json:
        emit(doc)
    else:
        where = sp.head.ref.removeprefix("refs/heads/") if sp.head.ref else "detached HEAD"
        click.echo(f"rolled back {record.tx_id} to {sp.name}: {where} at {(sp.head.commit or 'unborn')[:12]}")
        if closed:
            click.echo("the transaction is closed")
    return 0


@tx.command()
@timeout_option
@json_option
@pass_app
def commit(app: AppContext, timeout: float | None, as_json: bool) -> int:
    """Close the transaction and keep its commits; its savepoint refs are dropped.

    With `git config gitxact.savepointKeep SECONDS` they are kept that long (audit/undo).

    \b
    Example:
      gitxact tx commit
    """
    from gitxact.tx.results import TxDoc

    doc = TxDoc.of(app.workspace(timeout=timeout).transactions.commit())
    show(doc, as_json, lambda: f"committed {doc.tx_id}")
    return 0


@tx.command(name="list")
@json_option
@pass_app
def list_(app: AppContext, as_json: bool) -> int:
    """List open transactions of every worktree, with their savepoints and state.

    State is `open`, `busy` (a command is in a step now) or `abandoned` (run
    `gitxact recover`).

    \b
    Example:
      gitxact tx list --json
    """
    from gitxact.cli.render import render_transactions
    from gitxact.tx.results import list_transactions

    doc = list_transactions(app.workspace())
    show(doc, as_json, lambda: render_transactions(doc.transactions) or "no open transactions")
    return 0
