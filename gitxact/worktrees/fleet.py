"""Leases across hosts: with the PostgreSQL backend, every lease is also a claim in the
fleet's agent registry (:mod:`gitxact.backends.pg_registry`).

On files, ``leases.json`` keeps two agents of one host from leasing one name or branch;
it cannot see another host's clone. So with PostgreSQL selected an acquire first claims
the agent name and branch in the database (refused, exit 3, naming the host that holds
them), a renew renews the claim with the lease, and a release ends it once the worktree
is gone. On the file backend every function here is a no-op and imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

    from gitxact.backends.pg_registry import AgentRegistry
    from gitxact.core.repo import Repo
    from gitxact.worktrees.results import ClaimEndDoc, FleetDoc


def registry(repo: Repo) -> AgentRegistry | None:
    """The fleet's registry when the PostgreSQL backend is selected, else ``None``."""
    from gitxact.backends.choice import POSTGRESQL, choose

    choice = choose(repo)
    if choice.kind != POSTGRESQL:
        return None
    from gitxact.backends.pg_registry import AgentRegistry

    return AgentRegistry.open(repo, choice)


def claim(repo: Repo, agent: str, branch: str, owner_pid: int) -> tuple[AgentRegistry, bool] | None:
    """Claim *agent* and *branch* for the lease's owner; ``(registry, was it new)`` or ``None`` on files."""
    fleet = registry(repo)
    if fleet is None:
        return None
    from gitxact.backends.pg_registry import Owner

    try:
        known = any(c.agent == agent for c in fleet.list())
        fleet.claim(agent, branch, ttl=repo.settings.lease_ttl, owner=Owner.of(owner_pid))
    except BaseException:
        fleet.close()
        raise
    return fleet, not known


def renew(repo: Repo, agent: str, owner_pid: int) -> None:
    fleet = registry(repo)
    if fleet is None:
        return
    from gitxact.backends.pg_registry import Owner

    try:
        fleet.renew(agent, Owner.of(owner_pid))
    finally:
        fleet.close()


def release(repo: Repo, agent: str) -> None:
    """End *agent*'s claim: the local release, authorized by its token, is done."""
    fleet = registry(repo)
    if fleet is None:
        return
    try:
        fleet.release(agent, force=True)
    finally:
        fleet.close()


def reachable_registry(repo: Repo) -> AgentRegistry | None:
    """The registry, connected, before a reap changes anything here: an unreachable
    server is exit 75 with nothing done, not a reap that ended leases and left their claims."""
    fleet = registry(repo)
    if fleet is not None:
        try:
            fleet.list()
        except BaseException:
            fleet.close()
            raise
    return fleet


def end_claims(repo: Repo, fleet: AgentRegistry, *, ended_here: Collection[str], dry_run: bool) -> list[ClaimEndDoc]:
    """Reap's part in the registry (see :meth:`AgentRegistry.reapable`): every claim that
    is expired, or this host's whose owner died or whose lease *ended_here*.

    Each ends by compare-and-delete: a claim renewed (or taken over) since it was read is
    kept. A live, unexpired claim of another host is never touched.
    """
    from gitxact.worktrees.results import ClaimEndDoc

    ended: list[ClaimEndDoc] = []
    for claim, reason in fleet.reapable(ended_here):
        if dry_run or fleet.end(claim):
            ended.append(
                ClaimEndDoc(
                    agent=claim.agent, branch=claim.branch, host=claim.owner.host, pid=claim.owner.pid, reason=reason
                )
            )
            if not dry_run:
                repo.locks.events.emit("reap", repo.agent, lease=claim.agent, action="end-claim", host=claim.owner.host)
    return ended


def claims(repo: Repo) -> FleetDoc | None:
    """Every host's claims (``worktree list --all-hosts``); ``None`` on files."""
    from gitxact.worktrees.results import ClaimInfo, FleetDoc

    fleet = registry(repo)
    if fleet is None:
        return None
    try:
        found = fleet.list()
    finally:
        fleet.close()
    return FleetDoc(
        claims=[
            ClaimInfo(
                agent=c.agent,
                branch=c.branch,
                host=c.owner.host,
                pid=c.owner.pid,
                path=c.path,
                heartbeat=c.heartbeat,
                ttl=c.ttl,
                expired=c.expired,
            )
            for c in found
        ]
    )
