"""``gitxact mcp``: gitxact's operations as MCP tools, for one agent, over stdio.

An agent runtime (Claude Code, Cursor, Codex...) starts one server per agent; the
agent's name comes from the server's configuration (``--agent`` or ``GITXACT_AGENT``),
never from a tool's arguments, so an agent cannot act as another through its tools: no
tool takes an agent's name, and a token given to a tool is only ever tried against
this agent's own lease. The boundaries are the command line's: the lease's token (the
one this server was handed when it leased, unless the call names one), the lease
owner's transactions, the guards. Every result carries structured content, and a
refusal is a tool error with a machine-readable reason (:mod:`gitxact.mcp.replies`).

The server process owns the leases it takes (``owner_pid``): it lives as long as the
agent's session, so a session that ends without ``release`` leaves a lease whose owner
is dead, and ``gitxact reap``/``recover`` (or the next lease of the same agent) ends it,
its uncommitted work saved in a snapshot ref first.

Transactions, TDD, commits and syncs run in the agent's leased worktree. stdout carries
the protocol, so nothing here prints: check output goes to its log file only (named in
the result), git's output is captured.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field

from gitxact._version import __version__
from gitxact.errors import EXIT_FAILED, EXIT_REFUSED, OperationFailedError

# The results' models are imported at run time: the SDK reads each tool's output schema
# from its return annotation.
from gitxact.health.recover import RecoverDoc
from gitxact.land.foresight import ConflictsDoc
from gitxact.mcp import worktree_ops
from gitxact.mcp.replies import CONFLICT, LEASE_LOST, NO_LEASE, ToolRefusal
from gitxact.mcp.results import (
    Fleet,
    LeaseView,
    LockView,
    OwnLease,
    QueuePlace,
    Status,
    TddStep,
    TrackerEntries,
    TrackerEntry,
    TxState,
)
from gitxact.snapshots.results import RestoreDoc, SnapshotListDoc
from gitxact.tx.results import CheckDoc
from gitxact.workspace import Workspace
from gitxact.worktrees.results import AcquireDoc, ReleaseDoc, RenewDoc

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from gitxact.leases.records import Lease

INSTRUCTIONS = """gitxact coordinates many agents on one git repository. Start with `lease`: it gives you a
worktree (path) and branch of your own; work only there. Edit files, `commit` them, look at `diff` and `log`,
`sync` to bring your branch up to date with the target, `conflicts` to see who would collide, `land` (or
`land` with dry_run) to put your branch onto the main branch through the queue, and `release` when done.
`tx_begin`/`tx_savepoint`/`tx_rollback`/`tx_commit` wrap multi-step changes, `tdd_red`/`tdd_green`/
`tdd_refactor`/`tdd_done` test-first work, the `tracker_*` tools shared counters and values. `status` shows
your lease, transaction and queue place. Every result is structured; a refusal is a tool error whose
`error.reason` says why (conflict, check_failed, leased_by_other, no_lease, lease_lost, dirty, timeout...);
nothing was changed then unless the result says so."""

#: The input schemas refuse what the command line refuses, before anything runs: a ref,
#: branch, snapshot name or path that could be read as an option (``-``), an empty one.
NOT_AN_OPTION = r"^[^-]"
Ref = Annotated[str, Field(min_length=1, max_length=4096, pattern=NOT_AN_OPTION, description="a branch, tag or commit")]
Branch = Annotated[str, Field(min_length=1, max_length=4096, pattern=NOT_AN_OPTION, description="a branch name")]
WorktreePath = Annotated[
    str, Field(min_length=1, max_length=4096, pattern=NOT_AN_OPTION, description="relative to your worktree")
]
Paths = Annotated[list[WorktreePath], Field(min_length=1, max_length=10_000)]
Message = Annotated[str, Field(min_length=1, description="the commit message")]
SnapshotName = Annotated[str, Field(min_length=1, max_length=4096, pattern=NOT_AN_OPTION)]


class Tools:
    """The tools of one server: one agent, one repository, the token it was handed."""

    def __init__(self, repo_path: str | None, agent: str, *, owner_pid: int | None = None) -> None:
        self.repo_path = repo_path
        self.workspace = Workspace(repo_path, agent=agent)
        self.agent = self.workspace.agent or agent
        #: Whose life the leases follow: this server's unless the runtime named its own process.
        self.owner_pid = owner_pid or os.getpid()
        self._token: str | None = None
        self._lock = threading.Lock()

    # -- leases ---------------------------------------------------------------------------

    def lease(
        self,
        base: Ref | None = None,
        branch: Branch | None = None,
        reuse: Literal["resume", "fresh"] | None = None,
        sparse: Annotated[list[WorktreePath], Field(max_length=10_000)] | None = None,
    ) -> AcquireDoc:
        """Lease a worktree and branch of your own (idempotent while the lease lives). Your branch left
        by an earlier lease (not landed) is refused unless reuse: resume continues on it as it
        is, fresh starts it again from the base (its old commits kept as <branch>-<time>).
        sparse: check out only these folders (cone mode, the top's files too); unset, the
        project's .gitxact.toml lease.sparse decides; [] checks out every file."""
        doc = self.workspace.worktrees.acquire(
            self.agent,
            base=base,
            branch=branch,
            token=self._token,
            owner_pid=self.owner_pid,
            reuse=reuse,
            sparse=None if sparse is None else list(sparse),
        )
        with self._lock:
            if doc.token is not None:
                self._token = doc.token
        return doc

    def release(self, token: str | None = None, keep_branch: bool = False, save_dirty: bool = False) -> ReleaseDoc:
        """End your lease: the worktree goes, the branch too if merged elsewhere. Uncommitted work
        refuses the release unless save_dirty (then it is kept in a snapshot ref)."""
        self._own()  # no lease, or the one this server took has ended: said so (no_lease, lease_lost)
        return self.workspace.worktrees.release(
            self.agent, token=token or self._token, keep_branch=keep_branch, save_dirty=save_dirty
        )

    def renew(self, token: str | None = None) -> RenewDoc:
        """Heartbeat: your lease lives another gitxact.leaseTtl seconds."""
        self._own()
        return self.workspace.worktrees.renew(self.agent, token=token or self._token)

    # -- the everyday git of your worktree --------------------------------------------------

    def commit(self, paths: Paths, message: Message) -> worktree_ops.CommitDoc:
        """Commit exactly these paths (relative to your worktree; new, changed or deleted) with message,
        as they are on disk; other staged changes stay out. Refused, the index is left as it was."""
        ws, _ = self._own()
        return worktree_ops.commit(ws, self.agent, self._token, list(paths), message)

    def diff(
        self,
        ref: Ref | None = None,
        paths: list[WorktreePath] | None = None,
        max_bytes: Annotated[int, Field(ge=0, le=worktree_ops.MAX_DIFF_BYTES)] = 0,
    ) -> worktree_ops.DiffDoc:
        """Your worktree (committed and uncommitted) against ref, by default your lease's base; bounded."""
        ws, lease = self._own()
        return worktree_ops.diff(ws, lease, ref, list(paths) if paths else None, max_bytes)

    def log(
        self, ref: Ref | None = None, max_count: Annotated[int, Field(ge=0, le=worktree_ops.MAX_LOG_COUNT)] = 0
    ) -> worktree_ops.LogDoc:
        """Your branch's own commits since its base (or ref's history), newest first; bounded."""
        ws, lease = self._own()
        return worktree_ops.log(ws, lease, ref, max_count)

    def sync(
        self, onto: Branch, strategy: Literal["rebase", "merge"] = "rebase", keep_conflict: bool = False
    ) -> worktree_ops.SyncDoc:
        """Rebase (or merge) your branch onto onto's tip. A conflict is reported and aborted, your
        worktree as before, unless keep_conflict: then it is left in progress for you to resolve."""
        ws, _ = self._own()
        return worktree_ops.sync(ws, self.agent, self._token, onto, strategy=strategy, keep_conflict=keep_conflict)

    def sync_continue(self) -> worktree_ops.SyncDoc:
        """After sync with keep_conflict: once you edited the conflicting files, stage them and go on
        (rebase --continue, or the merge's commit). Refused while conflict markers remain."""
        ws, _ = self._own()
        return worktree_ops.sync_continue(ws, self.agent, self._token)

    def sync_abort(self) -> worktree_ops.SyncDoc:
        """Give up a sync left in progress: your branch and files exactly as before it."""
        ws, _ = self._own()
        return worktree_ops.sync_abort(ws, self.agent, self._token)

    def conflicts(self, onto: Branch | None = None) -> ConflictsDoc:
        """Which live leases' branches would conflict with onto (default: the main worktree's branch)
        and with each other, by a merge done in the object database only."""
        return self.workspace.conflicts(onto)

    # -- transactions ---------------------------------------------------------------------

    def tx_begin(self, name: str | None = None) -> TxState:
        """Open a transaction in your worktree: savepoint `start` = HEAD, index and files."""
        ws, _ = self._own()
        ws.transactions.begin(name)
        return _tx_state(ws)

    def tx_savepoint(self, name: str) -> TxState:
        """Add a savepoint to your open transaction."""
        ws, _ = self._own()
        ws.transactions.savepoint(name)
        return _tx_state(ws)

    def tx_rollback(self, to: str | None = None) -> TxState:
        """Restore branch, HEAD, index and files exactly; without `to`, back to the start (ending it)."""
        ws, _ = self._own()
        tx, _, closed = ws.transactions.rollback(to)
        return _tx_state(ws) if not closed else TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[], open=False)

    def tx_commit(self) -> TxState:
        """Close your transaction, keeping its commits."""
        tx = self._own()[0].transactions.commit()
        return TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[], open=False)

    # -- TDD ------------------------------------------------------------------------------

    def tdd_red(self, check: str, paths: Paths, message: str | None = None) -> TddStep:
        """Commit tests (paths, relative to your worktree); the check command must FAIL."""
        return self._tdd("red", check, paths, message)

    def tdd_green(self, check: str, paths: Paths, message: str | None = None) -> TddStep:
        """Commit the implementation; the check must PASS, else the whole sequence is rolled back."""
        return self._tdd("green", check, paths, message)

    def tdd_refactor(self, check: str, paths: Paths, message: str | None = None) -> TddStep:
        """Commit a refactor; the check must still pass, else back to the last passing commit."""
        return self._tdd("refactor", check, paths, message)

    def tdd_done(self) -> TddStep:
        """Close the TDD sequence, keeping its commits."""
        from gitxact.tx.tdd import done

        record = done(self._own()[0])
        commits = record.tdd.commits if record.tdd else []
        return TddStep(tx_id=record.tx_id, step="done", commit=None, commits=commits, check_log=None, closed=True)

    def _tdd(
        self, op: Literal["red", "green", "refactor"], check: str, paths: list[str], message: str | None
    ) -> TddStep:
        from gitxact.tx import checks
        from gitxact.tx.tdd import run_step

        ws, _ = self._own()
        spec = checks.parse(check, shell=True, timeout=ws.settings.check_timeout)  # noqa: S604 - the agent's own command line
        result = run_step(ws, op, spec, paths, message=message, echo=None)
        tdd = result.tx.tdd
        return TddStep(
            tx_id=result.tx.tx_id,
            step=op,
            commit=result.commit,
            commits=tdd.commits if tdd else [],
            check_log=str(result.check.log) if result.check else None,
            check=CheckDoc.of(result.check) if result.check else None,
        )

    # -- landing, snapshots, recover --------------------------------------------------------

    def land(
        self,
        onto: Branch,
        check: str | None = None,
        strategy: Literal["rebase", "merge"] = "rebase",
        dry_run: bool = False,
        parallel: Annotated[int, Field(ge=1)] | None = None,
    ) -> dict[str, Any]:
        """Land your leased branch onto `onto` through its queue, checked with `check` (a shell command).
        The result is `gitxact land --json`'s; with dry_run, `land --dry-run --json`'s (nothing filed,
        no ref moved, the check not run: would it land now, with which conflicts, after whom).
        parallel: how many queued candidates the queue builds, each on the ones before it, and
        checks at once (`land --parallel`; unset: gitxact.landParallel, default 1)."""
        if dry_run:
            return self.workspace.would_land(self._own()[1].branch, onto=onto).model_dump(mode="json", by_alias=True)
        from gitxact.land.results import LandRefusedError

        try:
            doc = self.workspace.land(  # noqa: S604 - as above
                onto=onto, check=check, shell=True, strategy=strategy, parallel=parallel
            )
        except LandRefusedError as refused:
            if not refused.doc.conflicts:
                raise
            steps = [f'sync(onto="{onto}", keep_conflict=true)', "sync_continue()", f'land(onto="{onto}")']
            raise ToolRefusal(
                refused.message,
                reason=CONFLICT,
                exit_code=refused.exit_code,
                doc=refused.doc,
                hint=refused.hint,
                next_tools=steps,
            ) from refused
        return doc.model_dump(mode="json", by_alias=True)

    def snapshots_list(self) -> SnapshotListDoc:
        """Your snapshots (work kept by a release, a rollback, a reap), oldest first."""
        return self.workspace.snapshots.list(agent=self.agent)

    def snapshots_restore(
        self, name: SnapshotName, force: bool = False, with_commits: bool | None = None
    ) -> RestoreDoc:
        """Put one of your snapshots back into your worktree; uncommitted work there refuses it
        unless force (then that work is saved to a snapshot ref first). Commits the snapshot
        stands on that your HEAD lacks refuse it, named (with_commits unset), are brought
        first (true), or are left out and named (false)."""
        from gitxact.snapshots.catalog import find

        ws, lease = self._own()
        info = find(ws, name)
        if info.agent != self.agent:
            raise ToolRefusal(
                f"snapshot {info.name} is not {self.agent!r}'s", reason="not_yours", exit_code=EXIT_REFUSED
            )
        return ws.snapshots.restore(info.name, into=lease.path, force=force, with_commits=with_commits)

    def recover(self) -> RecoverDoc:
        """Finish or roll back an interrupted transaction or TDD step in your worktree (recover's table)."""
        from gitxact.health.recover import StepReport, run_recover
        from gitxact.tx.journal import journal_ids
        from gitxact.tx.recovery import replay_worktree

        ws, _ = self._own()
        mine = ws.layout.worktree_id

        def own_journal(repo: Any) -> StepReport:
            if mine not in journal_ids(repo):
                return StepReport(name="journals")
            actions, problems = replay_worktree(repo, mine)
            return StepReport(name="journals", actions=actions, problems=problems)

        return run_recover(ws, steps=[("journals", own_journal)])

    # -- tracker, status --------------------------------------------------------------------

    def tracker_get(self, key: str | None = None) -> TrackerEntries:
        """Read one key of the shared tracker, or every key."""
        entries = self.workspace.tracker.get(key)
        return TrackerEntries(result=[_entry(name, entry) for name, entry in sorted(entries.items())])

    def tracker_set(self, key: str, value: Any) -> TrackerEntry:
        """Set a key to a JSON value (last writer wins: see tracker_compare_and_set)."""
        return _entry(key, self.workspace.tracker.set(key, value))

    def tracker_incr(self, key: str, amount: int = 1) -> TrackerEntry:
        """Add amount to the integer at key, atomically."""
        return _entry(key, self.workspace.tracker.incr(key, amount))

    def tracker_compare_and_set(self, key: str, value: Any, expect_version: int) -> TrackerEntry:
        """Set key only if it is still at expect_version (0: absent); refused if someone changed it."""
        return _entry(key, self.workspace.tracker.set(key, value, expect_version))

    def status(self, all: bool = False) -> Status:
        """Your lease (branch, base, commits ahead, dirty), open transaction and place in the landing
        queues; with all=true also every agent's lease, the locks and every open transaction."""
        from gitxact.leases.records import for_agent

        lease = for_agent(self.workspace, self.agent)
        lease = lease if lease is not None and lease.phase == "active" else None
        status = Status(agent=self.agent, worktree=lease.path if lease else None, lease=None, transaction=None)
        if lease is not None and Path(lease.path).is_dir():
            ws = Workspace(lease.path, agent=self.agent)
            status.lease = _own_lease(ws, lease)
            tx = ws.transactions.current()
            if tx is not None:
                status.transaction = TxState(
                    tx_id=tx.tx_id, name=tx.name, savepoints=[sp.name for sp in tx.savepoints], open=True
                )
            status.queue = _queue_places(self.workspace, lease.branch.removeprefix("refs/heads/"))
        if all:
            status.fleet = _fleet(self.workspace)
        return status

    def _own(self) -> tuple[Workspace, Lease]:
        """The agent's leased worktree (where its work runs) and its lease.

        ``lease_lost`` when this server leased and the lease is gone or is no longer the one
        it was handed (reaped, released elsewhere, taken again); ``no_lease`` otherwise.
        """
        from gitxact.leases.reader import token_matches
        from gitxact.leases.records import for_agent

        lease = for_agent(self.workspace, self.agent)
        token = self._token
        if lease is not None and lease.phase == "active" and (token is None or token_matches(lease.token_hash, token)):
            return Workspace(lease.path, agent=self.agent), lease
        if token is not None:
            raise ToolRefusal(
                f"the lease this server took for {self.agent!r} has ended",
                reason=LEASE_LOST,
                exit_code=EXIT_REFUSED,
                hint="lease again: your committed work is on your branch, uncommitted work in `snapshots_list`",
            )
        raise ToolRefusal(
            f"agent {self.agent!r} holds no lease",
            reason=NO_LEASE,
            exit_code=EXIT_FAILED,
            hint="call the lease tool first",
        )


def build_server(repo_path: str | None, agent: str, *, owner_pid: int | None = None) -> MCPServer[Any]:
    """The server for *agent* on the repository at *repo_path* (any folder inside it)."""
    from gitxact.mcp.catalog import GitxactServer, register

    server = GitxactServer("gitxact", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    register(Tools(repo_path, agent, owner_pid=owner_pid), server)
    return server


def serve(repo_path: Path | None, agent: str, *, owner_pid: int | None = None) -> None:
    """Serve over stdio until the client closes stdin, through :func:`gitxact.mcp.wire.guarded_stdio`.

    That needs the SDK's low-level server (``MCPServer.run_stdio_async`` opens its own
    stdin); an SDK that names it otherwise is served by its own transport.
    """
    import anyio

    server = build_server(str(repo_path) if repo_path is not None else None, agent, owner_pid=owner_pid)
    lowlevel = getattr(server, "_lowlevel_server", None)
    if lowlevel is None:  # pragma: no cover - another SDK version
        server.run("stdio")
        return

    async def run() -> None:
        from gitxact.mcp.wire import guarded_stdio

        async with guarded_stdio() as (read_stream, write_stream):
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())

    anyio.run(run)


def _tx_state(ws: Workspace) -> TxState:
    tx = ws.transactions.current()
    if tx is None:
        raise OperationFailedError("no transaction is open in this worktree")
    return TxState(tx_id=tx.tx_id, name=tx.name, savepoints=[sp.name for sp in tx.savepoints], open=True)


def _entry(key: str, entry: Any) -> TrackerEntry:
    return TrackerEntry(key=key, value=entry.value, version=entry.version, updated=entry.updated, by=entry.by)


def _own_lease(ws: Workspace, lease: Lease) -> OwnLease:
    head = ws.git(["rev-parse", "--verify", "--quiet", "HEAD"], check=False, read_only=True).stdout.strip() or None
    base = lease.base_commit or lease.base
    counted = ws.git(["rev-list", "--count", f"{base}..HEAD", "--"], check=False, read_only=True)
    dirty = ws.git(["status", "--porcelain", "-z"], check=False, read_only=True).stdout != ""
    return OwnLease(
        path=lease.path,
        branch=lease.branch.removeprefix("refs/heads/"),
        base=lease.base,
        base_commit=lease.base_commit,
        head=head,
        ahead=int(counted.stdout.strip()) if counted.ok and head else 0,
        dirty=dirty,
        expires=lease.heartbeat + lease.ttl,
    )


def _queue_places(ws: Workspace, branch: str) -> list[QueuePlace]:
    """The agent's requests waiting or being served in the landing queues, and their places."""
    from gitxact.land.store import open_landing

    lf = open_landing(ws)
    try:
        state = lf.peek()
    finally:
        lf.close()
    places = []
    for request in sorted(state.requests, key=lambda r: (r.queue, r.seq)):
        if request.branch.removeprefix("refs/heads/") != branch or request.state not in ("pending", "serving"):
            continue
        before = [r for r in state.requests if r.queue == request.queue and r.state in ("pending", "serving")]
        position = 1 + sum(1 for r in before if r.seq < request.seq)
        places.append(QueuePlace(request=request.id, target=request.target, state=request.state, position=position))
    return places


def _fleet(ws: Workspace) -> Fleet:
    from gitxact.health.status import collect

    doc = collect(ws)
    return Fleet(
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
