"""Leased worktrees: each agent gets its own worktree and branch, and nobody else's.

``ws.worktrees.acquire("agent-7")`` claims a fresh folder under the worktree root
(``mkdir`` is the atomic claim: a path that exists is never handed out), runs
``git worktree add --no-checkout --lock`` (registered on its branch and locked in one
step, so ``git worktree prune`` can never catch it in between), and records a
:class:`~gitxact.leases.records.Lease`: owner process (pid, host, start time), heartbeat,
TTL and the *hash* of a secret token. The token goes to the caller once; releasing or
renewing needs it (or ``force``).

Only what must be serialized runs under the repository lock, exclusive: the record,
the folder, git's registration and branch (acquire); git's unregistering, the record
and the branch (release). The files themselves are checked out (acquire) or deleted
(release) under that worktree's own lock, so many acquires and releases overlap their
slow part and hold up nobody else. Lease records change under the ``leases`` resource
lock. The ordering of each step for crash safety is described in
:mod:`gitxact.worktrees.lifecycle` (the one teardown every end shares) and
:mod:`gitxact.worktrees.sweep` (reap and repair).
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
from gitxact.leases.records import LEASES_LOCK, Lease, leases_file
from gitxact.locking.locks import LockKey, worktree_key
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.project import config as project_config
from gitxact.project import trust
from gitxact.util import console
from gitxact.util.faults import crashpoint
from gitxact.util.identity import ProcessIdentity
from gitxact.util.names import validate_agent
from gitxact.worktrees import (
    branches,
    disk,
    fleet,
    include,
    integration,
    lifecycle,
    ownership,
    paths,
    ports,
    registration,
    setup,
    sweep,
    trash,
    unfinished,
)
from gitxact.worktrees import sparse as sparse_paths
from gitxact.worktrees.lease_info import LeaseListDoc
from gitxact.worktrees.results import AcquireDoc, EndDoc, ReapDoc, ReleaseDoc, RenewDoc
from gitxact.worktrees.trace import trace

if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.core.repo import Repo
    from gitxact.worktrees.scoped import LeasedWorktree


class Worktrees:
    """Acquire, release, renew, list and reap the leases of one repository (``ws.worktrees``)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    # -- acquire -------------------------------------------------------------------------

    def acquire(
        self,
        agent: str,
        *,
        base: str | None = None,
        branch: str | None = None,
        token: str | None = None,
        owner_pid: int | None = None,
        reuse: str | None = None,
        keep_failed: bool = False,
        sparse: Sequence[str] | None = None,
    ) -> AcquireDoc:
        """Lease a worktree and branch to *agent*; idempotent while its lease lives.

        The agent's branch (``<prefix><agent>``) may be left from an earlier lease (a
        release keeps an unmerged branch). If it is neither behind the base nor ahead of
        it, it is simply used; if it is integrated (:mod:`gitxact.worktrees.integration`:
        merged, landed by the queue, ...) it is started again from the base, nothing on
        it being lost. Otherwise *reuse* decides: ``"resume"`` checks it out as it
        is, ``"fresh"`` starts it again from the base (an unmerged old tip is kept as
        ``<branch>-<time>``, nothing is lost); without one the acquire is refused (exit 3)
        saying how far ahead and behind it is, since resuming a stale branch by accident
        is how an agent starts 40 commits behind ``main``.

        The owner is this process unless *owner_pid* names another (the CLI names its
        parent: the agent's shell or orchestrator, since the CLI itself exits at once).
        If *agent* already holds a live lease, that lease is returned with
        ``existing=True`` and ``token=None`` (a secret is not handed to whoever asks),
        unless *token* is that lease's token. A dead or expired lease of the same
        agent is ended first (its dirty work saved to a snapshot ref, its branch kept
        if unmerged and checked out again); one still being acquired or released by
        another process is waited for.

        The repository lock is held only to register the worktree; its files are
        checked out under the new worktree's own lock, so acquires made at once check
        out at the same time.

        The commit checked out says how the lease is provisioned (its ``.gitxact.toml``,
        :mod:`gitxact.project.config`): its ports are allocated with the record; its setup
        commands, which must be trusted (:mod:`gitxact.project.trust`, else exit 3 before
        anything is made), run after the checkout, still outside the repository lock. A
        failing setup undoes the acquire (exit 1) unless *keep_failed*, which keeps the
        lease and returns it with ``setup_failed`` saying why.

        With *sparse* (folders, cone mode; ``None``: the file's ``lease.sparse``, ``()``: none)
        only those folders and the files at the top are checked out (:mod:`gitxact.worktrees.sparse`).
        """
        repo = self.repo
        validate_agent(agent)
        if reuse not in (None, RESUME, FRESH):
            raise UsageError(f"reuse must be {RESUME!r} or {FRESH!r}, not {reuse!r}")
        # The default branch needs no check-ref-format: config.load checked the prefix and
        # validate_agent's alphabet cannot form '..', '.lock', '@{' or a leading '.'.
        branch_name = branches.validate_branch(branch) if branch is not None else repo.settings.branch_prefix + agent
        owner = _owner(owner_pid)
        explicit_base = branches.resolve_base(repo, base) if base is not None else None
        wanted = None if sparse is None else sparse_paths.checked(sparse)
        repo.store.ensure("locks", "state")
        budget = repo.locks.default_timeout
        deadline = time.monotonic() + (budget if budget >= 0 else float("inf"))
        while True:
            outcome = self._register(
                agent,
                branch=branch,
                branch_name=branch_name,
                token=token,
                owner=owner,
                explicit_base=explicit_base,
                reuse=reuse,
                sparse=wanted,
            )
            if not isinstance(outcome, _Busy):
                break
            self._wait_for(outcome, deadline, budget)
        if isinstance(outcome, AcquireDoc):
            return outcome
        # Here the repository lock is free again and this thread holds the new worktree's lock.
        lease = outcome.lease
        failed: GitxactError | None = None
        included = include.Included([], [])
        provisioned: setup.CommandsRun | None = None
        released = False
        try:
            self._check_out(lease, outcome.commit)
            included = self._include(outcome.main, Path(lease.path), outcome.config.include)
            if outcome.config.setup:
                provisioned = setup.run_commands(repo, lease, outcome.config.setup, "setup")
            if provisioned is None or provisioned.failed is None or keep_failed:
                lease = self._activate(lease)
        except GitxactError as exc:
            failed = exc
        except BaseException:  # Ctrl-C during a long setup: nothing is left half-made
            repo.locks.release(outcome.key)
            released = True
            self._undo(lease, "its acquire was interrupted")
            raise
        finally:
            if not released:
                repo.locks.release(outcome.key)
        if failed is None and provisioned is not None and provisioned.failed is not None and not keep_failed:
            failed = OperationFailedError(
                f"the lease of {agent!r} was not made: {provisioned.describe('setup')}; nothing was kept",
                hint="fix the command (or pass --keep-failed to keep the worktree and look into it)",
            )
            # What the setup made is its own output, not anyone's work: nothing to save.
            self._undo(lease, f"its setup failed: {failed.message}", dirty=False)
            raise failed
        if failed is not None:
            self._undo(lease, f"its checkout failed: {failed.message}")
            raise failed
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

    def _register(
        self,
        agent: str,
        *,
        branch: str | None,
        branch_name: str,
        token: str | None,
        owner: ProcessIdentity,
        explicit_base: tuple[str, str] | None,
        reuse: str | None = None,
        sparse: tuple[str, ...] | None = None,
    ) -> AcquireDoc | _Busy | _Registered:
        """Under the repository lock: the lease record, the folder, the locked registration on
        its branch (no file checked out), the mark; returns holding the new worktree's lock."""
        repo = self.repo
        # git's registry, read before the lock: it is as fresh as needed for the root, the
        # base and the paths taken (the mkdir claim and `git worktree add` itself refuse a
        # path or branch taken meanwhile); judging an earlier lease reads it again, inside.
        entries = paths.registrations_by_real_path(repo)
        # The project's configuration, read (a git process) before the lock from the commit
        # the lease will most likely start at; read again inside only if that turns out wrong.
        expected = _start_commit(
            refs.read(repo.layout.common_dir, f"refs/heads/{branch_name}"),
            (explicit_base or branches.resolve_base(repo, None, next(iter(entries.values()), None)))[1],
            branch,
            reuse,
        )
        config, unreadable = project_config.LeaseConfig(), None
        try:
            config = project_config.committed(repo, expected)
        except UsageError as exc:  # only a new lease needs it: an existing one is returned all the same
            unreadable = exc
        with repo.locks.repository(EXCLUSIVE):
            root = paths.worktree_root(repo, entries)
            main = next(iter(entries.values()), None)
            base_label, base_commit = explicit_base or branches.resolve_base(repo, None, main)
            records = leases.load_records(repo)
            replaced: EndDoc | None = None
            previous = records.get(agent)
            if previous is not None:
                entries = paths.registrations_by_real_path(repo)
                step = sweep.step_for(repo, previous, entries, time.time())
                if step is None:
                    return self._existing(previous, branch, token)
                if step.action == sweep.BUSY:
                    return _Busy(previous, step.reason)
                replaced = lifecycle.end_lease(repo, previous, action=step.action, reason=step.reason)
                if leases.current(repo, previous) is not None:  # it changed meanwhile: look again
                    return _Busy(previous, replaced.reason)
                entries = paths.registrations_by_real_path(repo)
                records.pop(agent)
            start_commit = _start_commit(
                refs.read(repo.layout.common_dir, f"refs/heads/{branch_name}"), base_commit, branch, reuse
            )
            if start_commit != expected:
                config = project_config.committed(repo, start_commit)
            elif unreadable is not None:
                raise unreadable  # exit 2, before anything is made
            # exit 3, before anything is made; the hint names the file's commit as `trust --base` takes it
            named = branch_name if start_commit != base_commit else base_label if explicit_base else None
            trust.require_trusted(repo, config, named)
            holder = registration.checked_out_at(entries, branch_name)
            if holder is not None:
                other = next((lease.agent for lease in records.values() if paths.real(lease.path) == holder), None)
                raise RefusedError(
                    f"branch {branch_name!r} is already checked out at {holder}"
                    + (f" (leased to agent {other!r})" if other else ""),
                    hint="pick another --branch, or release that worktree first",
                )
            tip = refs.read(repo.layout.common_dir, f"refs/heads/{branch_name}")
            # Across hosts (PostgreSQL backend): the agent name and branch are claimed in the
            # fleet's registry before anything is made; refused (exit 3) naming the host.
            new_token = secrets.token_urlsafe(32)
            claimed = fleet.claim(repo, agent, branch_name, owner.pid, hash_token(new_token))
            try:
                kept: dict[str, object] = {}
                if tip is not None and branch is None:  # the agent's own branch, left by an earlier lease
                    tip, kept = self._reuse(branch_name, tip, base_label, base_commit, reuse)
                paths.ensure_root(root, repo.layout.common_dir)
                root = Path(os.path.realpath(root))
                taken = set(entries) | set(paths.real_paths([lease.path for lease in records.values()]))
                now = time.time()
                lease = Lease(
                    agent=agent,
                    path=str(paths.free_path(root, agent, taken)),
                    branch=branch_name,
                    base=base_label,
                    base_commit=base_commit,
                    token_hash=hash_token(new_token),
                    owner_pid=owner.pid,
                    owner_host=owner.host,
                    owner_start=owner.start,
                    created=now,
                    heartbeat=now,
                    ttl=repo.settings.lease_ttl,
                    phase="provisioning",
                    branch_created=tip is None,
                    teardown=list(config.teardown),
                    config_sha=config.sha256 if config.has_commands else None,
                    sparse=list(config.sparse if sparse is None else sparse),
                )
                lease = ports.record_with_ports(
                    repo, lease, config.ports, config.port_range, max_leases=repo.settings.max_leases
                )
                crashpoint("worktree-acquire-recorded")
                lease = self._claim_and_add(lease, root, taken, tip is not None)
                crashpoint("worktree-acquire-added")
                # The new worktree's lock, taken before the repository lock goes: from here until
                # the record says ``active``, a reap sees this acquire at work, never abandoned.
                wid = registration.worktree_id_of(Path(lease.path))
                try:
                    if wid is None:
                        raise OperationFailedError(f"git registered no worktree at {lease.path}")
                    key = worktree_key(wid)
                    repo.locks.acquire(key)
                except GitxactError:
                    lifecycle.end_lease(repo, lease, action="undo-acquire", reason="its worktree could not be locked")
                    raise
                crashpoint("worktree-acquire-registered")
            except BaseException:
                if claimed is not None:
                    with contextlib.suppress(GitxactError):
                        claimed.undo()
                raise
            finally:
                if claimed is not None:
                    claimed.close()
        main_path = main.path if main is not None and not main.bare else None
        return _Registered(lease, new_token, replaced, key, tip or base_commit, kept, main_path, config)

    def _reuse(
        self, branch: str, tip: str, base_label: str, base_commit: str, reuse: str | None
    ) -> tuple[str, dict[str, object]]:
        """The agent's existing branch: used, resumed, or started afresh (see :meth:`acquire`)."""
        repo = self.repo
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

    def _check_out(self, lease: Lease, commit: str) -> None:
        """Outside the repository lock, holding the new worktree's: its files."""
        repo = self.repo
        path = Path(lease.path)
        trace("checkout-start", lease.agent)
        registration.check_out(repo, path)
        trace("checkout-end", lease.agent)
        crashpoint("worktree-acquire-checked-out")
        registration.post_checkout(repo, path, commit)

    def _activate(self, lease: Lease) -> Lease:
        """Once its files (and setup) are done, still holding the worktree's lock: ``active``."""
        repo = self.repo
        wid = registration.worktree_id_of(Path(lease.path))
        # Its size now, files, included caches and setup's output all there: recorded, so
        # listings show it without walking the folder each time (gitxact.worktrees.disk).
        lease = lease.model_copy(update={"phase": "active", "worktree_id": wid, **disk.measured(lease.path)})
        if not leases.replace_record(repo, lease):
            raise OperationFailedError(f"the lease of {lease.agent!r} was ended while its worktree was checked out")
        crashpoint("worktree-acquire-done")
        return lease

    def _include(self, main: Path | None, path: Path, patterns: tuple[str, ...] = ()) -> include.Included:
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

    def _undo(self, lease: Lease, why: str, *, dirty: bool | None = None) -> None:
        """Undo an acquire that failed after its worktree was registered (a reap would too)."""
        try:
            with self.repo.locks.repository(EXCLUSIVE):
                lifecycle.end_lease(self.repo, lease, action="undo-acquire", reason=why, dirty=dirty)
            fleet.release(self.repo, lease)  # and its fleet claim, with the ports on it (PostgreSQL)
        except GitxactError as cleanup:  # the acquire's own error is the one to report
            console.warn(f"could not undo the failed acquire ({cleanup.message}); `gitxact worktree reap` will")

    def _wait_for(self, busy: _Busy, deadline: float, budget: float) -> None:
        """Wait (no repository lock held) for the acquire or release of *busy*'s lease to end."""
        wid = unfinished.worktree_id(self.repo, busy.lease)
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockTimeoutError(
                f"timed out after {budget:g}s: the previous lease of {busy.lease.agent!r} is still "
                f"{busy.lease.phase} ({busy.reason})",
                hint="try again once it is done; `gitxact worktree list` shows its phase",
            )
        if wid is not None:
            with self.repo.locks.worktree(wid, timeout=left):
                pass
        time.sleep(min(0.05, max(0.0, left)))  # a git outliving its acquire holds no lock to wait on

    def _claim_and_add(self, lease: Lease, root: Path, taken: set[str], exists: bool) -> Lease:
        repo = self.repo
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
            ownership.mark(Path(lease.path), lease.token_hash)
        except GitxactError:
            try:
                lifecycle.end_lease(repo, lease, action="undo-acquire", reason="git worktree add failed")
            except GitxactError as cleanup:  # the add's own error is the one to report
                console.warn(f"could not undo the failed acquire ({cleanup.message}); `gitxact worktree reap` will")
            raise
        return lease

    def _existing(self, lease: Lease, branch: str | None, token: str | None) -> AcquireDoc:
        if branch is not None and branch != lease.branch:
            raise RefusedError(
                f"agent {lease.agent!r} already holds a lease on branch {lease.branch!r} at {lease.path}",
                hint="release it first to lease another branch",
            )
        shown = token if token is not None and lease.token_matches(token) else None
        return _acquire_doc(lease, token=shown, existing=True, replaced=None)

    # -- release and renew ---------------------------------------------------------------

    def release(
        self,
        agent: str,
        *,
        token: str | None = None,
        force: bool = False,
        keep_branch: bool = False,
        save_dirty: bool = False,
    ) -> ReleaseDoc:
        """End *agent*'s lease: needs its token unless *force*.

        Uncommitted or untracked work refuses the release (exit 3) unless *force* or
        *save_dirty*, which first save it to ``refs/gitxact/snapshots/<agent>/<time>``.
        The branch is deleted only when it is integrated
        (:mod:`gitxact.worktrees.integration`: merged, landed by the queue, its patches
        upstream, or squash-merged).

        The lease's teardown commands (from the trusted ``.gitxact.toml`` it was made
        from) run first, once the release is not refused; one that fails is reported
        (``teardown_error``) and the release goes on: the work is saved all the same.
        """
        repo = self.repo
        validate_agent(agent)
        repo.store.ensure("locks", "state")
        lease = self._owned(agent, token, force, "release")
        torn = self._teardown(lease, force=force or save_dirty)
        if torn.clean:
            # Clean before the teardown ran: whatever it left is saved, and never refuses the release.
            save_dirty = True
        # First, under the worktree's lock only: refuse or save its work, then delete its
        # files; releases made at once do this at the same time, and hold up nobody.
        emptied = lifecycle.empty_for_release(repo, lease, force=force, save_dirty=save_dirty, keep_branch=keep_branch)
        with repo.locks.repository(EXCLUSIVE):
            if emptied is not None:
                now = leases.current(repo, lease)
                if now is None:  # a reap finished it meanwhile
                    emptied.reason += "; finished meanwhile by another gitxact (reap or recover)"
                    emptied.claim_left = fleet.release(repo, lease)
                    _empty_trash(repo, lease)
                    return ReleaseDoc(**emptied.model_dump(), **torn.fields())
                ended = lifecycle.end_lease(repo, now, action="release", reason="released", keep_branch=keep_branch)
                ended.snapshot_ref = emptied.snapshot_ref
                ended.transaction = emptied.transaction
                ended.stale_lock_removed = emptied.stale_lock_removed
            else:
                # Not a whole, active worktree (or it changed meanwhile): everything here.
                lease = self._owned(agent, token, force, "release")
                dirty = lifecycle.refuse_release(repo, lease, force=force or save_dirty)
                ended = lifecycle.end_lease(
                    repo, lease, action="release", reason="released", keep_branch=keep_branch, dirty=dirty
                )
        if not ended.error:
            # The fleet's claim ends with the lease (PostgreSQL backend), if it is still this lease's.
            ended.claim_left = fleet.release(repo, lease)
        _empty_trash(repo, lease)
        return ReleaseDoc(**ended.model_dump(), **torn.fields())

    def _teardown(self, lease: Lease, *, force: bool) -> _Teardown:
        """Run *lease*'s teardown in its worktree, under that worktree's lock, unless the
        release would be refused (exit 3 first: nothing is torn down for a release that
        does not happen) or the file it came from is no longer trusted."""
        repo = self.repo
        if not lease.teardown or lease.phase != "active" or lease.worktree_id is None:
            return _Teardown()
        if lease.config_sha is None or not trust.is_trusted(repo, lease.config_sha):
            why = "teardown not run: the .gitxact.toml the lease was made from is no longer trusted"
            console.warn(why)
            return _Teardown(error=why)
        with repo.locks.worktree(lease.worktree_id):
            dirty = lifecycle.refuse_release(repo, lease, force=force)
            ran = setup.run_commands(repo, lease, lease.teardown, "teardown")
        if ran.failed is not None:
            console.warn(f"{ran.describe('teardown')}; releasing all the same")
        return _Teardown(
            log=str(ran.log), error=None if ran.failed is None else ran.describe("teardown"), clean=dirty is False
        )

    def renew(self, agent: str, *, token: str | None = None, force: bool = False) -> RenewDoc:
        """Heartbeat: the lease lives another TTL from now (the TTL is re-read from config)."""
        repo = self.repo
        validate_agent(agent)
        repo.store.ensure("locks", "state")
        file = leases_file(repo)
        # The fleet's claim first (PostgreSQL backend), outside the leases lock (a network
        # call): a lease whose claim went to another host is not renewed here.
        fleet.renew(repo, self._renewable(agent, token, force))
        with repo.locks.resource(LEASES_LOCK):
            lease = self._renewable(agent, token, force)
            state = file.load(repair=True)
            lease = lease.model_copy(update={"heartbeat": time.time(), "ttl": repo.settings.lease_ttl})
            state.leases[agent] = lease
            file.save(state)
        return RenewDoc(agent=agent, heartbeat=lease.heartbeat, ttl=lease.ttl, expires=lease.heartbeat + lease.ttl)

    def _renewable(self, agent: str, token: str | None, force: bool) -> Lease:
        lease = self._owned(agent, token, force, "renew")
        if lease.phase != "active":
            raise RefusedError(f"the lease of {agent!r} is {lease.phase}; it cannot be renewed")
        return lease

    def _owned(self, agent: str, token: str | None, force: bool, verb: str) -> Lease:
        lease = leases.load_records(self.repo).get(agent)
        if lease is None:
            raise OperationFailedError(f"agent {agent!r} holds no lease", hint="`gitxact worktree list` shows leases")
        if not force:
            if not token:
                raise RefusedError(
                    f"to {verb} the lease of {agent!r} its token is needed; nothing was changed",
                    hint="pass --token (or GITXACT_LEASE_TOKEN) as returned by acquire, or --force",
                )
            if not lease.token_matches(token):
                raise RefusedError(f"wrong token for the lease of {agent!r}; nothing was changed")
        return lease

    # -- queries and cleanup -------------------------------------------------------------

    def list(self, *, dirty: bool = True) -> LeaseListDoc:
        """Every lease; with *dirty* (the default here) whether each worktree holds uncommitted
        work, one ``git status`` per lease (see :mod:`gitxact.worktrees.listing`)."""
        from gitxact.worktrees.listing import collect

        return collect(self.repo, dirty=dirty)

    def reap(self, *, dry_run: bool = False, claims: bool = True) -> ReapDoc:
        """End every lease that is not live (owner dead on this host, or TTL expired),
        finish or undo interrupted acquires/releases, and drop registrations whose
        folder is gone. Dirty work is saved to a snapshot ref first. Live leases are
        never touched. What ``gitxact recover`` calls.

        On PostgreSQL (*claims*), also end the fleet's registry claims that are expired
        (any host's), or this host's whose owner died or whose lease ended here; a
        server that does not answer is exit 75 before anything is done. ``recover`` and
        ``doctor`` pass ``claims=False``: they put this host right even with the server
        down (doctor's backend check reports the server)."""
        registry = fleet.reachable_registry(self.repo) if claims else None
        try:
            return sweep.sweep(self.repo, dry_run=dry_run, actions=None, registry=registry)
        finally:
            if registry is not None:
                registry.close()

    def repair(self, *, dry_run: bool = False) -> ReapDoc:
        """Only put half-done work right (interrupted acquire/release, missing folders,
        stale registrations, unlocked leased worktrees); leaves dead-owner leases to
        :meth:`reap`. With *dry_run*, what ``gitxact doctor`` reports."""
        return sweep.sweep(self.repo, dry_run=dry_run, actions=sweep.REPAIR_ACTIONS)

    # -- the context manager -------------------------------------------------------------

    def lease(
        self,
        agent: str,
        *,
        base: str | None = None,
        branch: str | None = None,
        keep_branch: bool = False,
        heartbeat: bool = True,
        reuse: str | None = None,
        sparse: Sequence[str] | None = None,
    ) -> contextlib.AbstractContextManager[LeasedWorktree]:
        """Hold a fresh lease for the ``with`` block, then release it, always.

        Raises :class:`~gitxact.errors.RefusedError` (exit 3 on the command line) when
        *agent* already holds a live lease (the message names its path, branch and owner:
        a ``with`` lease owns its worktree), or when the agent's branch is left from an
        earlier lease, ahead of or behind the base, and *reuse* (``"resume"``/``"fresh"``,
        as for :meth:`acquire`) does not say what to do with it.

        Work left uncommitted in the worktree is never lost: it is saved to
        ``refs/gitxact/snapshots/<agent>/<time>`` (named in ``wt.released``) before the
        worktree is removed. With *heartbeat*, a background thread renews the lease
        every third of its TTL, so a long block is not reaped while this process lives.
        *sparse* is :meth:`acquire`'s.
        """
        from gitxact.worktrees.scoped import leased_worktree

        return leased_worktree(
            self,
            agent,
            base=base,
            branch=branch,
            keep_branch=keep_branch,
            heartbeat=heartbeat,
            reuse=reuse,
            sparse=sparse,
        )


#: How :meth:`Worktrees.acquire` treats an agent's branch left by an earlier lease.
RESUME = "resume"
FRESH = "fresh"


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


@dataclass(frozen=True)
class _Teardown:
    """What a release's teardown did (nothing, when the lease has none)."""

    log: str | None = None
    error: str | None = None
    #: The worktree was clean before the teardown ran.
    clean: bool = False

    def fields(self) -> dict[str, str | None]:
        return {"teardown_log": self.log, "teardown_error": self.error}


def _empty_trash(repo: Repo, lease: Lease) -> None:
    """Once *lease* is gone: its files, renamed into the trash by the release, deleted by a
    detached process (the release does not wait); a reap finishes what that leaves."""
    entry = trash.entry_of(paths.worktree_root(repo), lease.agent, lease.token_hash)
    if leases.current(repo, lease) is None and os.path.lexists(entry):
        trash.delete_later(entry)


def _start_commit(tip: str | None, base_commit: str, branch: str | None, reuse: str | None) -> str:
    """The commit a lease will check out: the branch's tip when it exists (unless the
    agent's own branch is started afresh, see ``Worktrees._reuse``), else the base."""
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
