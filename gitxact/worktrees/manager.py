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
lock.

This is the facade; the steps, each ordered for crash safety, are in
:mod:`gitxact.worktrees.acquire`, :mod:`gitxact.worktrees.lifecycle` (release, and the one
teardown every end shares) and :mod:`gitxact.worktrees.sweep` (reap and repair).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from gitxact.errors import RefusedError
from gitxact.leases.records import LEASES_LOCK, Lease, leases_file
from gitxact.util.names import validate_agent
from gitxact.worktrees import acquire, fleet, lifecycle, ownership, sweep
from gitxact.worktrees.results import RenewDoc

if TYPE_CHECKING:
    import contextlib
    from collections.abc import Sequence

    from gitxact.core.repo import Repo
    from gitxact.worktrees.lease_info import LeaseListDoc
    from gitxact.worktrees.results import AcquireDoc, ReapDoc, ReleaseDoc
    from gitxact.worktrees.scoped import LeasedWorktree


class Worktrees:
    """Acquire, release, renew, list and reap the leases of one repository (``ws.worktrees``)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

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
        asked = acquire.request(
            self.repo, agent, base=base, branch=branch, token=token, owner_pid=owner_pid, reuse=reuse, sparse=sparse
        )
        return acquire.acquire(self.repo, asked, keep_failed=keep_failed)

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
        return lifecycle.release(
            self.repo, agent, token=token, force=force, keep_branch=keep_branch, save_dirty=save_dirty
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
        lease = ownership.lease_of(self.repo, agent, token, force=force, verb="renew")
        if lease.phase != "active":
            raise RefusedError(f"the lease of {agent!r} is {lease.phase}; it cannot be renewed")
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
        never touched. What ``gitxact worktree reap`` runs.

        On PostgreSQL (*claims*), also end the fleet's registry claims that are expired
        (any host's), or this host's whose owner died or whose lease ended here; a
        server that does not answer is exit 75 before anything is done. ``doctor`` passes
        ``claims=False``: it puts this host right even with the server down (its backend
        check reports the server); ``recover`` ends the claims only if the server answers
        (:func:`gitxact.health.recover.leases_step`)."""
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
