"""Acquiring a lease: its steps, in the order that makes a SIGKILL at any point undoable.

Under the repository lock (:func:`_register`), each durable step after the one before:

1. the agent's previous lease, if it is not live, is ended (:func:`gitxact.worktrees.lifecycle.end_lease`);
2. the fleet's claim on the agent and branch (PostgreSQL backend; undone if what follows fails);
3. the record, written as ``provisioning`` (with its ports) before anything is made;
4. the folder, claimed by ``mkdir``;
5. the worktree, registered on its branch and locked in one step, no file checked out
   (``git worktree add --no-checkout --lock``), then gitxact's mark in its admin folder;
6. the new worktree's lock, taken before the repository lock goes.

Then, holding that worktree lock alone (:func:`_provision`): the files are checked out
(``git reset --hard``, as ``git worktree add`` does), the ``.worktreeinclude`` files
copied, the setup commands run, and ``active`` written last.

A record still ``provisioning`` whose acquire is gone is undone (``undo-acquire``,
:mod:`gitxact.worktrees.sweep`); while its worktree's lock is held, or a git it started
still runs there, it is at work (:mod:`gitxact.worktrees.unfinished`). A checkout it never
finished is told by the missing index (:func:`gitxact.worktrees.registration.checkout_finished`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError, LockTimeoutError, OperationFailedError, RefusedError, UsageError
from gitxact.git import refs
from gitxact.leases import records as leases
from gitxact.leases.reader import hash_token
from gitxact.leases.records import Lease
from gitxact.locking.locks import LockKey, worktree_key
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.project import config as project_config
from gitxact.project import trust
from gitxact.util import console
from gitxact.util.faults import crashpoint
from gitxact.util.identity import ProcessIdentity
from gitxact.util.names import validate_agent
from gitxact.worktrees import branches, disk, fleet, include, integration, paths, ports, registration, setup
from gitxact.worktrees import sparse as sparse_paths
from gitxact.worktrees.lifecycle import end_lease
from gitxact.worktrees.ownership import mark
from gitxact.worktrees.paths import real, real_paths
from gitxact.worktrees.results import AcquireDoc, EndDoc
from gitxact.worktrees.sweep import BUSY, step_for
from gitxact.worktrees.trace import trace
from gitxact.worktrees.unfinished import worktree_id

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.core.repo import Repo
    from gitxact.git import run as git

#: How an acquire treats an agent's branch left by an earlier lease.
RESUME = "resume"
FRESH = "fresh"


@dataclass(frozen=True)
class Request:
    """What an acquire was asked for, checked before any lock is taken."""

    agent: str
    #: The branch asked for (``None``: the agent's own, :attr:`branch_name`).
    branch: str | None
    branch_name: str
    token: str | None
    owner: ProcessIdentity
    explicit_base: tuple[str, str] | None
    reuse: str | None
    sparse: tuple[str, ...] | None


@dataclass(frozen=True)
class _Busy:
    """The agent's previous lease is being acquired or released by another process."""

    lease: Lease
    reason: str


@dataclass(frozen=True)
class _Registered:
    """A lease registered under the repository lock, whose worktree lock this thread holds."""

    lease: Lease
    token: str
    replaced: EndDoc | None
    key: LockKey
    commit: str
    #: What became of the agent's branch left by an earlier lease (AcquireDoc fields).
    kept: dict[str, object] = field(default_factory=dict)
    #: The main worktree (from the registry read under the lock): where .worktreeinclude files come from.
    main: Path | None = None
    #: The ``.gitxact.toml`` of the commit checked out (trusted, if it names commands).
    config: project_config.LeaseConfig = field(default_factory=project_config.LeaseConfig)


@dataclass
class _Ground:
    """What the repository lock lets an acquire rely on: git's registry, the records, the base."""

    entries: dict[str, git.WorktreeEntry]
    records: dict[str, Lease]
    root: Path
    main: git.WorktreeEntry | None
    base_label: str
    base_commit: str


def request(
    repo: Repo,
    agent: str,
    *,
    base: str | None,
    branch: str | None,
    token: str | None,
    owner_pid: int | None,
    reuse: str | None,
    sparse: Sequence[str] | None,
) -> Request:
    """The arguments of :meth:`gitxact.worktrees.manager.Worktrees.acquire`, checked (exit 2)."""
    validate_agent(agent)
    if reuse not in (None, RESUME, FRESH):
        raise UsageError(f"reuse must be {RESUME!r} or {FRESH!r}, not {reuse!r}")
    # The default branch needs no check-ref-format: config.load checked the prefix and
    # validate_agent's alphabet cannot form '..', '.lock', '@{' or a leading '.'.
    branch_name = branches.validate_branch(branch) if branch is not None else repo.settings.branch_prefix + agent
    return Request(
        agent=agent,
        branch=branch,
        branch_name=branch_name,
        token=token,
        owner=_owner(owner_pid),
        explicit_base=branches.resolve_base(repo, base) if base is not None else None,
        reuse=reuse,
        sparse=None if sparse is None else sparse_paths.checked(sparse),
    )


def acquire(repo: Repo, req: Request, *, keep_failed: bool) -> AcquireDoc:
    """Register the lease (waiting for a previous lease of the agent at work elsewhere),
    then provision it; see :meth:`gitxact.worktrees.manager.Worktrees.acquire`."""
    repo.store.ensure("locks", "state")
    budget = repo.locks.default_timeout
    deadline = time.monotonic() + (budget if budget >= 0 else float("inf"))
    while True:
        outcome = _register(repo, req)
        if not isinstance(outcome, _Busy):
            break
        _wait_for(repo, outcome, deadline, budget)
    if isinstance(outcome, AcquireDoc):
        return outcome
    return _provision(repo, outcome, keep_failed=keep_failed)


# -- under the repository lock ---------------------------------------------------------------


def _register(repo: Repo, req: Request) -> AcquireDoc | _Busy | _Registered:
    """Under the repository lock: steps 1 to 6 of the module docstring; returns holding the
    new worktree's lock (or the agent's live lease, or the previous lease still at work)."""
    # git's registry, read before the lock: it is as fresh as needed for the root, the
    # base and the paths taken (the mkdir claim and `git worktree add` itself refuse a
    # path or branch taken meanwhile); judging an earlier lease reads it again, inside.
    entries = paths.registrations_by_real_path(repo)
    expected, config, unreadable = _config_before_lock(repo, req, entries)
    with repo.locks.repository(EXCLUSIVE):
        ground = _ground(repo, req, entries)
        replaced: EndDoc | None = None
        previous = ground.records.get(req.agent)
        if previous is not None:
            ended = _end_previous(repo, req, previous)
            if not isinstance(ended, EndDoc):
                return ended
            replaced = ended
            ground.entries = paths.registrations_by_real_path(repo)
            ground.records.pop(req.agent)
        tip = refs.read(repo.layout.common_dir, f"refs/heads/{req.branch_name}")
        start_commit = _start_commit(tip, ground.base_commit, req.branch, req.reuse)
        if start_commit != expected:
            config = project_config.committed(repo, start_commit)
        elif unreadable is not None:
            raise unreadable  # exit 2, before anything is made
        # exit 3, before anything is made; the hint names the file's commit as `trust --base` takes it
        named = (
            req.branch_name if start_commit != ground.base_commit else ground.base_label if req.explicit_base else None
        )
        trust.require_trusted(repo, config, named)
        _refuse_branch_checked_out(req.branch_name, ground)
        return _claimed_and_made(repo, req, ground, config, replaced)


def _config_before_lock(
    repo: Repo, req: Request, entries: dict[str, git.WorktreeEntry]
) -> tuple[str, project_config.LeaseConfig, UsageError | None]:
    """The project's configuration, read (a git process) before the lock from the commit the
    lease will most likely start at; read again inside only if that turns out wrong."""
    expected = _start_commit(
        refs.read(repo.layout.common_dir, f"refs/heads/{req.branch_name}"),
        (req.explicit_base or branches.resolve_base(repo, None, next(iter(entries.values()), None)))[1],
        req.branch,
        req.reuse,
    )
    try:
        return expected, project_config.committed(repo, expected), None
    except UsageError as exc:  # only a new lease needs it: an existing one is returned all the same
        return expected, project_config.LeaseConfig(), exc


def _ground(repo: Repo, req: Request, entries: dict[str, git.WorktreeEntry]) -> _Ground:
    main = next(iter(entries.values()), None)
    base_label, base_commit = req.explicit_base or branches.resolve_base(repo, None, main)
    return _Ground(
        entries=entries,
        records=leases.load_records(repo),
        root=paths.worktree_root(repo, entries),
        main=main,
        base_label=base_label,
        base_commit=base_commit,
    )


def _end_previous(repo: Repo, req: Request, previous: Lease) -> AcquireDoc | _Busy | EndDoc:
    """Step 1: the agent's previous lease returned while it lives, waited for while another
    process works on it, else ended (its work saved) and what that did returned."""
    step = step_for(repo, previous, paths.registrations_by_real_path(repo), time.time())
    if step is None:
        return _existing(previous, req.branch, req.token)
    if step.action == BUSY:
        return _Busy(previous, step.reason)
    replaced = end_lease(repo, previous, action=step.action, reason=step.reason)
    if leases.current(repo, previous) is not None:  # it changed meanwhile: look again
        return _Busy(previous, replaced.reason)
    return replaced


def _existing(lease: Lease, branch: str | None, token: str | None) -> AcquireDoc:
    if branch is not None and branch != lease.branch:
        raise RefusedError(
            f"agent {lease.agent!r} already holds a lease on branch {lease.branch!r} at {lease.path}",
            hint="release it first to lease another branch",
        )
    shown = token if token is not None and lease.token_matches(token) else None
    return _acquire_doc(lease, token=shown, existing=True, replaced=None)


def _refuse_branch_checked_out(branch_name: str, ground: _Ground) -> None:
    holder = registration.checked_out_at(ground.entries, branch_name)
    if holder is None:
        return
    other = next((lease.agent for lease in ground.records.values() if real(lease.path) == holder), None)
    raise RefusedError(
        f"branch {branch_name!r} is already checked out at {holder}"
        + (f" (leased to agent {other!r})" if other else ""),
        hint="pick another --branch, or release that worktree first",
    )


def _claimed_and_made(
    repo: Repo, req: Request, ground: _Ground, config: project_config.LeaseConfig, replaced: EndDoc | None
) -> _Registered:
    """Steps 2 to 6: the fleet's claim, then the worktree; the claim undone if that fails.

    Across hosts (PostgreSQL backend) the agent name and branch are claimed in the fleet's
    registry before anything is made; refused (exit 3) naming the host.
    """
    tip = refs.read(repo.layout.common_dir, f"refs/heads/{req.branch_name}")
    new_token = secrets.token_urlsafe(32)
    claimed = fleet.claim(repo, req.agent, req.branch_name, req.owner.pid, hash_token(new_token))
    try:
        kept: dict[str, object] = {}
        if tip is not None and req.branch is None:  # the agent's own branch, left by an earlier lease
            tip, kept = _reuse(repo, req, tip, ground)
        lease, key = _made(repo, req, ground, config, new_token, branch_created=tip is None)
    except BaseException:
        if claimed is not None:
            with contextlib.suppress(GitxactError):
                claimed.undo()
        raise
    finally:
        if claimed is not None:
            claimed.close()
    main_path = ground.main.path if ground.main is not None and not ground.main.bare else None
    return _Registered(lease, new_token, replaced, key, tip or ground.base_commit, kept, main_path, config)


def _made(
    repo: Repo,
    req: Request,
    ground: _Ground,
    config: project_config.LeaseConfig,
    token: str,
    *,
    branch_created: bool,
) -> tuple[Lease, LockKey]:
    """Steps 3 to 6: the record (``provisioning``), the folder, the locked registration and
    its mark, the worktree's lock; returns the lease and that lock, held."""
    paths.ensure_root(ground.root, repo.layout.common_dir)
    root = Path(os.path.realpath(ground.root))
    taken = set(ground.entries) | set(real_paths([lease.path for lease in ground.records.values()]))
    path = paths.free_path(root, req.agent, taken)
    lease = _new_record(repo, req, ground, config, token, path=path, branch_created=branch_created)
    lease = ports.record_with_ports(repo, lease, config.ports, config.port_range, max_leases=repo.settings.max_leases)
    crashpoint("worktree-acquire-recorded")
    lease = _claim_and_add(repo, lease, root, taken, exists=not branch_created)
    crashpoint("worktree-acquire-added")
    key = _lock_new_worktree(repo, lease)
    crashpoint("worktree-acquire-registered")
    return lease, key


def _new_record(
    repo: Repo,
    req: Request,
    ground: _Ground,
    config: project_config.LeaseConfig,
    token: str,
    *,
    path: Path,
    branch_created: bool,
) -> Lease:
    """The record as it is written first (``provisioning``; saved with its ports)."""
    now = time.time()
    return Lease(
        agent=req.agent,
        path=str(path),
        branch=req.branch_name,
        base=ground.base_label,
        base_commit=ground.base_commit,
        token_hash=hash_token(token),
        owner_pid=req.owner.pid,
        owner_host=req.owner.host,
        owner_start=req.owner.start,
        created=now,
        heartbeat=now,
        ttl=repo.settings.lease_ttl,
        phase="provisioning",
        branch_created=branch_created,
        teardown=list(config.teardown),
        config_sha=config.sha256 if config.has_commands else None,
        sparse=list(config.sparse if req.sparse is None else req.sparse),
    )


def _claim_and_add(repo: Repo, lease: Lease, root: Path, taken: set[str], *, exists: bool) -> Lease:
    """Steps 4 and 5: the folder claimed (the record follows a path taken meanwhile), the
    worktree added, locked, its sparse cone set and marked; undone if git fails."""
    reason = registration.lock_reason(lease.agent, lease.owner_pid, lease.owner_host)
    start = lease.branch if exists else (lease.base_commit or lease.base)
    try:
        while not paths.claim(Path(lease.path)):  # a root this user may not write: StateAccessError
            # Someone outside gitxact made that folder since we looked: never reuse it.
            taken.add(lease.path)
            lease = lease.model_copy(update={"path": str(paths.free_path(root, lease.agent, taken))})
            leases.save_record(repo, lease)
        crashpoint("worktree-acquire-claimed")
        registration.add_worktree(repo, Path(lease.path), lease.branch, start, create=not exists, reason=reason)
        sparse_paths.set_cone(repo, Path(lease.path), lease.sparse)
        mark(Path(lease.path), lease.token_hash)
    except GitxactError:
        try:
            end_lease(repo, lease, action="undo-acquire", reason="git worktree add failed")
        except GitxactError as cleanup:  # the add's own error is the one to report
            console.warn(f"could not undo the failed acquire ({cleanup.message}); `gitxact worktree reap` will")
        raise
    return lease


def _lock_new_worktree(repo: Repo, lease: Lease) -> LockKey:
    """Step 6: the new worktree's lock, taken before the repository lock goes: from here until
    the record says ``active``, a reap sees this acquire at work, never abandoned."""
    wid = registration.worktree_id_of(Path(lease.path))
    try:
        if wid is None:
            raise OperationFailedError(f"git registered no worktree at {lease.path}")
        key = worktree_key(wid)
        repo.locks.acquire(key)
    except GitxactError:
        end_lease(repo, lease, action="undo-acquire", reason="its worktree could not be locked")
        raise
    return key


def _reuse(repo: Repo, req: Request, tip: str, ground: _Ground) -> tuple[str, dict[str, object]]:
    """The agent's existing branch: used, resumed, or started afresh (see
    :meth:`gitxact.worktrees.manager.Worktrees.acquire`); returns the commit to check out."""
    branch, reuse, base_label, base_commit = req.branch_name, req.reuse, ground.base_label, ground.base_commit
    counts = repo.git(
        ["rev-list", "--left-right", "--count", f"{base_commit}...{tip}"],
        cwd=repo.layout.common_dir,
        read_only=True,
    ).stdout.split()
    behind, ahead = int(counts[0]), int(counts[1])
    found: dict[str, object] = {"branch_ahead": ahead, "branch_behind": behind}
    if not ahead and not behind:
        return tip, found
    if reuse != RESUME:
        # Integrated (landed, merged, ...): nothing on it would be lost by starting it
        # again, so that is what happens, with no flag and no copy of the old tip.
        verdict = integration.judge(repo, branch, tip, [base_label])
        if verdict.integrated:
            found["branch_integrated"] = verdict.describe()
            reuse, ahead = FRESH, 0
    if reuse is None:
        landed = integration.landed_already(repo, branch, tip)
        raise RefusedError(
            f"branch {branch!r} is left from an earlier lease: {ahead} commit(s) not on {base_label}"
            + (f" ({landed} of them landed already)" if landed else "")
            + f", {behind} commit(s) behind it",
            hint=f"--resume continues on it as it is; --fresh starts it again from {base_label}"
            + (f" (its commits kept as {branch}-<time>)" if ahead else ""),
        )
    if reuse == RESUME:
        return tip, {**found, "reused": RESUME}
    updates = [refs.RefUpdate(f"refs/heads/{branch}", base_commit, tip)]
    if ahead:  # never lose a commit: the old tip keeps a branch of its own
        keep = f"{branch}-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
        updates.insert(0, refs.RefUpdate(f"refs/heads/{keep}", tip, refs.MUST_NOT_EXIST))
        found["kept_branch"] = keep
    refs.apply(repo.layout.common_dir, updates, message=f"gitxact: {branch} started afresh from {base_label}")
    return base_commit, {**found, "reused": FRESH}


def _wait_for(repo: Repo, busy: _Busy, deadline: float, budget: float) -> None:
    """Wait (no repository lock held) for the acquire or release of *busy*'s lease to end."""
    wid = worktree_id(repo, busy.lease)
    left = deadline - time.monotonic()
    if left <= 0:
        raise LockTimeoutError(
            f"timed out after {budget:g}s: the previous lease of {busy.lease.agent!r} is still "
            f"{busy.lease.phase} ({busy.reason})",
            hint="try again once it is done; `gitxact worktree list` shows its phase",
        )
    if wid is not None:
        with repo.locks.worktree(wid, timeout=left):
            pass
    time.sleep(min(0.05, max(0.0, left)))  # a git outliving its acquire holds no lock to wait on


# -- holding the new worktree's lock alone ----------------------------------------------------


def _provision(repo: Repo, outcome: _Registered, *, keep_failed: bool) -> AcquireDoc:
    """The files, the included ones and the setup, then ``active``; undone if any fails
    (a failing setup is kept, with *keep_failed*). The worktree's lock is let go here."""
    lease = outcome.lease
    failed: GitxactError | None = None
    included = include.Included([], [])
    provisioned: setup.CommandsRun | None = None
    released = False
    try:
        _check_out(repo, lease, outcome.commit)
        included = _include(outcome.main, Path(lease.path), outcome.config.include)
        if outcome.config.setup:
            provisioned = setup.run_commands(repo, lease, outcome.config.setup, "setup")
        if provisioned is None or provisioned.failed is None or keep_failed:
            lease = _activate(repo, lease)
    except GitxactError as exc:
        failed = exc
    except BaseException:  # Ctrl-C during a long setup: nothing is left half-made
        repo.locks.release(outcome.key)
        released = True
        _undo(repo, lease, "its acquire was interrupted")
        raise
    finally:
        if not released:
            repo.locks.release(outcome.key)
    if failed is None and provisioned is not None and provisioned.failed is not None and not keep_failed:
        failed = OperationFailedError(
            f"the lease of {lease.agent!r} was not made: {provisioned.describe('setup')}; nothing was kept",
            hint="fix the command (or pass --keep-failed to keep the worktree and look into it)",
        )
        # What the setup made is its own output, not anyone's work: nothing to save.
        _undo(repo, lease, f"its setup failed: {failed.message}", dirty=False)
        raise failed
    if failed is not None:
        _undo(repo, lease, f"its checkout failed: {failed.message}")
        raise failed
    return _provisioned_doc(lease, outcome, included, provisioned)


def _provisioned_doc(
    lease: Lease, outcome: _Registered, included: include.Included, provisioned: setup.CommandsRun | None
) -> AcquireDoc:
    doc = _acquire_doc(lease, token=outcome.token, existing=False, replaced=outcome.replaced)
    update: dict[str, object] = {
        **outcome.kept,
        "included": included.copied,
        "include_skipped": included.skipped,
        "include_linked": included.linked,
        "include_reflinked": included.reflinked,
    }
    if provisioned is not None:
        update["setup_log"] = str(provisioned.log)
        if provisioned.failed is not None:
            update["setup_failed"] = provisioned.describe("setup")
    return doc.model_copy(update=update)


def _check_out(repo: Repo, lease: Lease, commit: str) -> None:
    """Outside the repository lock, holding the new worktree's: its files."""
    path = Path(lease.path)
    trace("checkout-start", lease.agent)
    registration.check_out(repo, path)
    trace("checkout-end", lease.agent)
    crashpoint("worktree-acquire-checked-out")
    registration.post_checkout(repo, path, commit)


def _activate(repo: Repo, lease: Lease) -> Lease:
    """Once its files (and setup) are done, still holding the worktree's lock: ``active``."""
    wid = registration.worktree_id_of(Path(lease.path))
    # Its size now, files, included caches and setup's output all there: recorded, so
    # listings show it without walking the folder each time (gitxact.worktrees.disk).
    lease = lease.model_copy(update={"phase": "active", "worktree_id": wid, **disk.measured(lease.path)})
    if not leases.replace_record(repo, lease):
        raise OperationFailedError(f"the lease of {lease.agent!r} was ended while its worktree was checked out")
    crashpoint("worktree-acquire-done")
    return lease


def _include(main: Path | None, path: Path, patterns: tuple[str, ...] = ()) -> include.Included:
    """The ignored files ``.worktreeinclude`` (and ``.gitxact.toml``'s ``lease.include``) names
    (``.env``, local config), copied from the main worktree: a new worktree has only tracked
    files, and an agent's tests often need these."""
    if main is None:
        return include.Included([], [])
    try:
        done = include.copy_included(main, path, patterns)
    except OSError as exc:  # a convenience: the lease stands without it
        console.warn(f"could not copy the files .worktreeinclude names into {path}: {exc}")
        return include.Included([], [])
    include.warn_skipped(done.skipped, path)
    return done


def _undo(repo: Repo, lease: Lease, why: str, *, dirty: bool | None = None) -> None:
    """Undo an acquire that failed after its worktree was registered (a reap would too)."""
    try:
        with repo.locks.repository(EXCLUSIVE):
            end_lease(repo, lease, action="undo-acquire", reason=why, dirty=dirty)
        fleet.release(repo, lease)  # and its fleet claim, with the ports on it (PostgreSQL)
    except GitxactError as cleanup:  # the acquire's own error is the one to report
        console.warn(f"could not undo the failed acquire ({cleanup.message}); `gitxact worktree reap` will")


def _start_commit(tip: str | None, base_commit: str, branch: str | None, reuse: str | None) -> str:
    """The commit a lease will check out: the branch's tip when it exists (unless the
    agent's own branch is started afresh, see :func:`_reuse`), else the base."""
    if tip is None or (branch is None and reuse == FRESH):
        return base_commit
    return tip


def _owner(pid: int | None) -> ProcessIdentity:
    if pid is None:
        return ProcessIdentity.current()
    if pid <= 0:
        raise UsageError(f"--owner-pid {pid} is not a process id")
    owner = ProcessIdentity.of(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        raise UsageError(f"--owner-pid {pid}: no such process", hint="name a live process (the agent's)") from None
    except PermissionError:
        pass  # it exists, owned by someone else
    if owner.is_dead():
        raise UsageError(f"--owner-pid {pid} is not a live process")
    return owner


def _acquire_doc(lease: Lease, *, token: str | None, existing: bool, replaced: EndDoc | None) -> AcquireDoc:
    return AcquireDoc(
        agent=lease.agent,
        path=lease.path,
        branch=lease.branch,
        base=lease.base,
        base_commit=lease.base_commit,
        token=token,
        existing=existing,
        branch_created=lease.branch_created,
        worktree_id=lease.worktree_id,
        owner_pid=lease.owner_pid,
        owner_host=lease.owner_host,
        created=lease.created,
        heartbeat=lease.heartbeat,
        ttl=lease.ttl,
        replaced=replaced,
        ports=lease.ports,
        sparse=lease.sparse,
        env=setup.lease_env(lease),
    )
