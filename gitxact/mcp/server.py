"""``gitxact mcp``: gitxact's operations as MCP tools, for one agent, over stdio.

An agent runtime (Claude Code, Cursor, Codex...) starts one server per agent; the
agent's name comes from the server's configuration (``--agent`` or ``GITXACT_AGENT``),
never from a tool's arguments, so an agent cannot act as another through its tools.
The boundaries are the command line's: a lease's token (the one this server was
handed when it leased, unless the call names one), the lease owner's transactions,
the guards. A refusal or a failure is a tool error carrying gitxact's message (and
hint), never a crash of the server.

The server process owns the leases it takes (``owner_pid``): it lives as long as the
agent's session, so a runtime that dies takes its lease's liveness with it, and
``gitxact recover`` (or the next lease of the same agent) ends it.

Transactions and TDD run in the agent's leased worktree. stdout carries the protocol,
so nothing here prints: check output goes to its log file only (named in the result).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel

from gitxact._version import __version__
from gitxact.errors import GitxactError, OperationFailedError
from gitxact.util import inputs
from gitxact.workspace import Workspace

INSTRUCTIONS = """gitxact coordinates many agents on one git repository. Start with `lease`: it gives you a
worktree (path) and branch of your own; work only there. Use `tx_begin`/`tx_savepoint`/`tx_rollback`/
`tx_commit` around multi-step changes, `tdd_red`/`tdd_green`/`tdd_refactor`/`tdd_done` for test-first
work (a failing green rolls the sequence back), `land` to put your branch onto the main branch through
the queue, the `tracker_*` tools for shared counters and values, and `release` when done. A refusal is
reported as a tool error with the reason; nothing was changed then."""


class Lease(BaseModel):
    agent: str
    path: str
    branch: str
    base: str
    #: The lease's secret; ``None`` when an existing lease is returned (it was handed out once).
    token: str | None
    existing: bool


class Released(BaseModel):
    agent: str
    path: str
    branch: str
    snapshot_ref: str | None
    branch_deleted: bool
    branch_kept_reason: str | None


class Renewed(BaseModel):
    agent: str
    expires: float


class TxState(BaseModel):
    tx_id: str
    name: str | None
    savepoints: list[str]
    #: False once the transaction ended (commit, a rollback to its start).
    open: bool


class TddStep(BaseModel):
    tx_id: str
    step: str
    commit: str | None
    commits: list[str]
    check_log: str | None


class Landed(BaseModel):
    branch: str
    target: str
    state: str
    landed_tip: str | None
    commits: list[str]


class TrackerEntry(BaseModel):
    key: str
    value: Any
    version: int
    updated: float
    by: str | None


class LockView(BaseModel):
    name: str
    holders: list[str]
    waiters: list[str]


class LeaseView(BaseModel):
    agent: str
    branch: str
    path: str
    live: bool
    dirty: bool | None


class Status(BaseModel):
    agent: str
    #: This agent's worktree, if it holds a lease.
    worktree: str | None
    locks: list[LockView]
    leases: list[LeaseView]
    transactions: list[str]


class Tools:
    """The tools of one server: one agent, one repository, the token it was handed."""

    def __init__(self, repo_path: str | None, agent: str) -> None:
        self.repo_path = repo_path
        self.workspace = Workspace(repo_path, agent=agent)
        self.agent = self.workspace.agent or agent
        self._token: str | None = None
        self._lock = threading.Lock()

    # -- leases ---------------------------------------------------------------------------

    def lease(self, base: str | None = None, branch: str | None = None) -> Lease:
        """Lease a worktree and branch of your own (idempotent while the lease lives)."""
        with _as_tool_error():
            doc = self.workspace.worktrees.acquire(
                self.agent, base=base, branch=branch, token=self._token, owner_pid=os.getpid()
            )
        with self._lock:
            if doc.token is not None:
                self._token = doc.token
        return Lease(
            agent=doc.agent, path=doc.path, branch=doc.branch, base=doc.base, token=doc.token, existing=doc.existing
        )

    def release(self, token: str | None = None, keep_branch: bool = False, save_dirty: bool = False) -> Released:
        """End your lease: the worktree goes, the branch too if merged elsewhere. Uncommitted work
        refuses the release unless save_dirty (then it is kept in a snapshot ref)."""
        with _as_tool_error():
            doc = self.workspace.worktrees.release(
                self.agent, token=token or self._token, keep_branch=keep_branch, save_dirty=save_dirty
            )
        return Released(
            agent=doc.agent,
            path=doc.path,
            branch=doc.branch,
            snapshot_ref=doc.snapshot_ref,
            branch_deleted=doc.branch_deleted,
            branch_kept_reason=doc.branch_kept_reason,
        )

    def renew(self, token: str | None = None) -> Renewed:
        """Heartbeat: your lease lives another gitxact.leaseTtl seconds."""
        with _as_tool_error():
            doc = self.workspace.worktrees.renew(self.agent, token=token or self._token)
        return Renewed(agent=doc.agent, expires=doc.expires)

    # -- transactions ---------------------------------------------------------------------

    def tx_begin(self, name: str | None = None) -> TxState:
        """Open a transaction in your worktree: savepoint `start` = HEAD, index and files."""
        with _as_tool_error():
            ws = self._worktree()
            ws.transactions.begin(name)
            return _tx_state(ws)

    def tx_savepoint(self, name: str) -> TxState:
        """Add a savepoint to your open transaction."""
        with _as_tool_error():
            ws = self._worktree()
            ws.transactions.savepoint(name)
            return _tx_state(ws)

    def tx_rollback(self, to: str | None = None) -> TxState:
        """Restore branch, HEAD, index and files exactly; without `to`, back to the start (ending it)."""
        with _as_tool_error():
            ws = self._worktree()
            tx, _, closed = ws.transactions.rollback(to)
            return _tx_state(ws) if not closed else TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[], open=False)

    def tx_commit(self) -> TxState:
        """Close your transaction, keeping its commits."""
        with _as_tool_error():
            tx = self._worktree().transactions.commit()
            return TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[], open=False)

    # -- TDD ------------------------------------------------------------------------------

    def tdd_red(self, check: str, paths: list[str], message: str | None = None) -> TddStep:
        """Commit tests (paths, relative to your worktree); the check command must FAIL."""
        return self._tdd("red", check, paths, message)

    def tdd_green(self, check: str, paths: list[str], message: str | None = None) -> TddStep:
        """Commit the implementation; the check must PASS, else the whole sequence is rolled back."""
        return self._tdd("green", check, paths, message)

    def tdd_refactor(self, check: str, paths: list[str], message: str | None = None) -> TddStep:
        """Commit a refactor; the check must still pass, else back to the last passing commit."""
        return self._tdd("refactor", check, paths, message)

    def tdd_done(self) -> TddStep:
        """Close the TDD sequence, keeping its commits."""
        from gitxact.tx.tdd import done

        with _as_tool_error():
            record = done(self._worktree())
        commits = record.tdd.commits if record.tdd else []
        return TddStep(tx_id=record.tx_id, step="done", commit=None, commits=commits, check_log=None)

    def _tdd(
        self, op: Literal["red", "green", "refactor"], check: str, paths: list[str], message: str | None
    ) -> TddStep:
        from gitxact.tx import checks
        from gitxact.tx.tdd import run_step

        with _as_tool_error():
            ws = self._worktree()
            spec = checks.parse(check, shell=True, timeout=ws.settings.check_timeout)  # noqa: S604 - the agent's own command line
            result = run_step(ws, op, spec, paths, message=message, echo=None)
        tdd = result.tx.tdd
        return TddStep(
            tx_id=result.tx.tx_id,
            step=op,
            commit=result.commit,
            commits=tdd.commits if tdd else [],
            check_log=str(result.check.log) if result.check else None,
        )

    # -- landing, tracker, status ---------------------------------------------------------

    def land(self, onto: str, check: str | None = None, strategy: Literal["rebase", "merge"] = "rebase") -> Landed:
        """Land your leased branch onto `onto` through its queue, checked with `check` (a shell command)."""
        with _as_tool_error():
            doc = self.workspace.land(onto=onto, check=check, shell=True, strategy=strategy)  # noqa: S604 - as above
        return Landed(
            branch=doc.branch, target=doc.target, state=doc.state, landed_tip=doc.landed_tip, commits=doc.commits
        )

    def tracker_get(self, key: str | None = None) -> list[TrackerEntry]:
        """Read one key of the shared tracker, or every key."""
        with _as_tool_error():
            entries = self.workspace.tracker.get(key)
        return [_entry(name, entry) for name, entry in sorted(entries.items())]

    def tracker_set(self, key: str, value: Any) -> TrackerEntry:
        """Set a key to a JSON value (last writer wins: see tracker_compare_and_set)."""
        with _as_tool_error():
            return _entry(key, self.workspace.tracker.set(key, value))

    def tracker_incr(self, key: str, amount: int = 1) -> TrackerEntry:
        """Add amount to the integer at key, atomically."""
        with _as_tool_error():
            return _entry(key, self.workspace.tracker.incr(key, amount))

    def tracker_compare_and_set(self, key: str, value: Any, expect_version: int) -> TrackerEntry:
        """Set key only if it is still at expect_version (0: absent); refused if someone changed it."""
        with _as_tool_error():
            return _entry(key, self.workspace.tracker.set(key, value, expect_version))

    def status(self) -> Status:
        """Locks (holders, waiters), leases, open transactions."""
        from gitxact.health.status import collect

        with _as_tool_error():
            doc = collect(self.workspace)
        mine = next((lease.path for lease in doc.leases if lease.agent == self.agent), None)
        return Status(
            agent=self.agent,
            worktree=mine,
            locks=[
                LockView(
                    name=lock.name,
                    holders=[f"pid {p.pid} ({p.agent or '-'})" for p in lock.holders],
                    waiters=[f"pid {p.pid} ({p.agent or '-'})" for p in lock.waiters],
                )
                for lock in doc.locks
            ],
            leases=[
                LeaseView(agent=lease.agent, branch=lease.branch, path=lease.path, live=lease.live, dirty=lease.dirty)
                for lease in doc.leases
            ],
            transactions=[f"{tx.tx_id} ({tx.agent or '-'}, {tx.state})" for tx in doc.transactions],
        )

    def _worktree(self) -> Workspace:
        """The agent's leased worktree: where its transactions and TDD steps run."""
        from gitxact.leases.records import for_agent

        lease = for_agent(self.workspace, self.agent)
        if lease is None or lease.phase != "active":
            raise OperationFailedError(f"agent {self.agent!r} holds no lease", hint="call the lease tool first")
        return Workspace(lease.path, agent=self.agent)

    def register(self, server: MCPServer[Any]) -> None:
        for name in TOOLS:
            server.add_tool(_checked(getattr(self, name)), name=name)


#: The tools, by name (each a method of :class:`Tools`).
TOOLS = (
    "lease",
    "release",
    "renew",
    "tx_begin",
    "tx_savepoint",
    "tx_rollback",
    "tx_commit",
    "tdd_red",
    "tdd_green",
    "tdd_refactor",
    "tdd_done",
    "land",
    "tracker_get",
    "tracker_set",
    "tracker_incr",
    "tracker_compare_and_set",
    "status",
)


def build_server(repo_path: str | None, agent: str) -> MCPServer[Any]:
    """The server for *agent* on the repository at *repo_path* (any folder inside it)."""
    server: MCPServer[Any] = MCPServer("gitxact", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    Tools(repo_path, agent).register(server)
    return server


def serve(repo_path: Path | None, agent: str) -> None:
    """Serve over stdio until the client closes stdin, through :func:`gitxact.mcp.wire.guarded_stdio`.

    That needs the SDK's low-level server (``MCPServer.run_stdio_async`` opens its own
    stdin); an SDK that names it otherwise is served by its own transport.
    """
    import anyio

    server = build_server(str(repo_path) if repo_path is not None else None, agent)
    lowlevel = getattr(server, "_lowlevel_server", None)
    if lowlevel is None:  # pragma: no cover - another SDK version
        server.run("stdio")
        return

    async def run() -> None:
        from gitxact.mcp.wire import guarded_stdio

        async with guarded_stdio() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    anyio.run(run)


#: Arguments that are JSON values (bounded by the tracker's 1 MiB); every other one is text.
_JSON_ARGUMENTS = frozenset({"value"})


def _checked(tool: Callable[..., Any]) -> Callable[..., Any]:
    """*tool*, refusing an argument with a NUL byte, over :data:`~gitxact.util.inputs.MAX_TEXT_BYTES`
    or nested too deep before it runs (a tool error, reason ``invalid_argument``).

    The SDK reads the schema from the signature, which :func:`functools.wraps` hands on.
    """

    @functools.wraps(tool)
    def run(**arguments: Any) -> Any:
        with _as_tool_error():
            for name, value in arguments.items():
                what = f"argument {name!r}"
                inputs.check_json(value, what)
                if name in _JSON_ARGUMENTS:
                    continue  # its size is the tracker's to bound
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str):
                        inputs.check_text(text, what)
        return tool(**arguments)

    return run


@contextlib.contextmanager
def _as_tool_error() -> Iterator[None]:
    """Errors as tool errors that say why: the message, the hint, the exit code and the reason.

    gitxact's errors (refusals, failures, timeouts) carry their own message. Anything else is
    a bug: its type and text, and the traceback kept in gitxact's crash log, as the CLI does,
    rather than the SDK's "Error executing tool" with the traceback in the server's log.
    """
    try:
        yield
    except GitxactError as error:
        raise ToolError(describe(error)) from error
    except Exception as exc:
        from gitxact import error_handler

        log = error_handler.crash_log(exc)
        where = f"; the traceback is in {log}" if log is not None else ""
        raise ToolError(f"internal error: {type(exc).__name__}: {exc}{where} [exit 1]") from exc


def describe(error: GitxactError) -> str:
    """A tool error's text: ``message (hint: ...) [exit N, reason R]``."""
    hint = f" (hint: {error.hint})" if error.hint else ""
    reason = f", reason {error.reason}" if error.reason else ""
    return f"{error.message}{hint} [exit {error.exit_code}{reason}]"


def _tx_state(ws: Workspace) -> TxState:
    tx = ws.transactions.current()
    if tx is None:
        raise OperationFailedError("no transaction is open in this worktree")
    return TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[sp.name for sp in tx.savepoints], open=True)


def _entry(key: str, entry: Any) -> TrackerEntry:
    return TrackerEntry(key=key, value=entry.value, version=entry.version, updated=entry.updated, by=entry.by)
