"""Leases across hosts: with the PostgreSQL backend, every lease is also a claim in the
fleet's agent registry (:mod:`gitxact.backends.pg_registry`).

On files, ``leases.json`` keeps two agents of one host from leasing one name or branch;
it cannot see another host's clone. So with PostgreSQL selected an acquire first claims
the agent name and branch in the database (refused, exit 3, naming the host that holds
them), a renew renews the claim with the lease, and a release ends it once the worktree
is gone. A lease's ports are recorded on its claim (:func:`assign_ports`), so they end
with it. Each of these compares the claim with the lease's own (owner and token): a claim
that expired while this host was cut off and went to another host is never touched from
here. On the file backend every function here is a no-op and imports nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from gitxact.backends.pg_registry import AgentRegistry, ClaimRef
    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease
    from gitxact.worktrees.results import ClaimEndDoc, FleetDoc


def registry(repo: Repo) -> AgentRegistry | None:
    """The fleet's registry when the PostgreSQL backend is selected, else ``None``."""
    from gitxact.backends.choice import POSTGRESQL, choose

    choice = choose(repo)
    if choice.kind != POSTGRESQL:
        return None
    from gitxact.backends.pg_registry import AgentRegistry

    return AgentRegistry.open(repo, choice)


class Claimed:
    """The claim an acquire made: undone (compare-and-delete) if the acquire fails after it."""

    def __init__(self, registry: AgentRegistry, agent: str, ref: ClaimRef, new: bool) -> None:
        self.registry = registry
        self.agent = agent
        self.ref = ref
        self.new = new

    def undo(self) -> None:
        if self.new:
            self.registry.release(self.agent, self.ref)
        else:  # a claim taken over stays, as before the acquire, without the ports it was given
            self.registry.clear_ports(self.agent, self.ref)

    def close(self) -> None:
        self.registry.close()


def claim_ref(owner_pid: int, owner_start: int | None, token_hash: str) -> ClaimRef:
    """The claim a lease makes: its owner as other hosts see it, and a digest of its token's
    hash (the database, which every host reads, gets nothing that checks a token)."""
    import hashlib

    from gitxact.backends.pg_registry import ClaimRef, Owner
    from gitxact.backends.postgres import host_identity

    token = hashlib.sha256(f"gitxact claim\0{token_hash}".encode()).hexdigest()[:32]
    return ClaimRef(Owner(pid=owner_pid, host=host_identity(), start=owner_start), token)


def _ref(lease: Lease) -> ClaimRef:
    return claim_ref(lease.owner_pid, lease.owner_start, lease.token_hash)


def claim(repo: Repo, agent: str, branch: str, owner_pid: int, token_hash: str) -> Claimed | None:
    """Claim *agent* and *branch* for the lease's owner and token; ``None`` on files."""
    fleet = registry(repo)
    if fleet is None:
        return None
    from gitxact.backends.pg_registry import Owner

    try:
        known = any(c.agent == agent for c in fleet.list())
        owner = Owner.of(owner_pid)
        ref = claim_ref(owner.pid, owner.start, token_hash)
        fleet.claim(agent, branch, ttl=repo.settings.lease_ttl, owner=owner, token=ref.token)
    except BaseException:
        fleet.close()
        raise
    return Claimed(fleet, agent, ref, not known)


def renew(repo: Repo, lease: Lease) -> None:
    """Renew *lease*'s claim first: exit 3, the lease not renewed, if the claim is no longer its own."""
    fleet = registry(repo)
    if fleet is None:
        return
    try:
        fleet.renew(lease.agent, _ref(lease))
    finally:
        fleet.close()


def assign_ports(repo: Repo, lease: Lease, pick: Callable[[set[int]], list[int]]) -> list[int] | None:
    """Record on *lease*'s claim the ports *pick* chooses given those every other claim of
    this host holds, whichever clone made it (:meth:`AgentRegistry.assign_ports`); exit 3
    if the claim is no longer the lease's. ``None`` on files: *pick* is not called."""
    fleet = registry(repo)
    if fleet is None:
        return None
    try:
        return fleet.assign_ports(lease.agent, _ref(lease), pick)
    finally:
        fleet.close()


def release(repo: Repo, lease: Lease) -> str | None:
    """End *lease*'s claim, now that the local release (authorized by its token) is done.

    Only if the claim is still this lease's: one that expired while this host was cut
    off, and that another host took over, is left as it is. Returns why it was left
    (``None`` when it ended, or on files).
    """
    fleet = registry(repo)
    if fleet is None:
        return None
    try:
        if fleet.release(lease.agent, _ref(lease)):
            return None
        return f"not this lease's any more, left as it is ({fleet.whose(lease.agent)}); only the local lease ended"
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


def end_claims(
    repo: Repo, fleet: AgentRegistry, *, ended_here: Mapping[str, Lease], dry_run: bool
) -> list[ClaimEndDoc]:
    """Reap's part in the registry (see :meth:`AgentRegistry.reapable`): every claim that
    is expired, or this host's whose owner died or whose lease *ended_here* (agent ->
    the lease that ended) while the claim is still that lease's.

    Each ends by compare-and-delete: a claim renewed (or taken over) since it was read is
    kept. A live, unexpired claim of another host is never touched.
    """
    from gitxact.worktrees.results import ClaimEndDoc

    ended: list[ClaimEndDoc] = []
    for claim, reason in fleet.reapable({agent: _ref(lease) for agent, lease in ended_here.items()}):
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
                ports=c.ports,
            )
            for c in found
        ]
    )
