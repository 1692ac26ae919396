"""Loopback ports for leases that never collide (``.gitxact.toml``'s ``lease.ports``).

Hashing a folder name into a port collides (about 5% of pairs at ten worktrees), and a
slot counter reused after teardown hands out a port a leftover server still holds. Here
each lease's ports are chosen under the ``leases`` lock, while its record is written:
the lowest ports of the range that no other lease record holds, each probed free on
127.0.0.1 at that moment (a port something listens on, or that lingers in TIME_WAIT, is
skipped). They are recorded in the lease, so they are taken until the record is gone:
a release or a reap drops it, and they are free for the next acquire.

On files only this clone's records are seen: two clones sharing a port range rely on the
probe, which a server not yet started cannot answer; give each its own
``gitxact.leasePortRange``. On PostgreSQL the ports are also recorded on the lease's fleet
claim, chosen clear of every claim of the same host (any clone's), under a lock of that
host on the database (:func:`gitxact.worktrees.fleet.assign_ports`); they end with the
claim (release, reap, expiry). Another host's claims do not count: its loopback is its own.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from gitxact.errors import RefusedError
from gitxact.leases import records as leases
from gitxact.leases.records import LEASES_LOCK
from gitxact.worktrees import fleet

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease


def is_free(port: int) -> bool:
    """Whether nothing holds *port* on the loopback now: a bind without ``SO_REUSEADDR``
    fails for a listener and for a port still in TIME_WAIT (both are skipped)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def choose(count: int, port_range: tuple[int, int], taken: Iterable[int]) -> list[int]:
    """The lowest *count* ports of *port_range* not in *taken* and free on the loopback."""
    held = set(taken)
    low, high = port_range
    chosen: list[int] = []
    busy = 0
    for port in range(low, high + 1):
        if len(chosen) == count:
            return chosen
        if port in held:
            continue
        if is_free(port):
            chosen.append(port)
        else:
            busy += 1
    if len(chosen) == count:
        return chosen
    raise RefusedError(
        f"no {count} free port(s) in {low}-{high}: {len(held & set(range(low, high + 1)))} held by leases, "
        f"{busy} in use on 127.0.0.1; nothing was done",
        hint="release leases, or widen the range (git config gitxact.leasePortRange, or lease.port-range)",
    )


def record_with_ports(
    repo: Repo, lease: Lease, count: int, port_range: tuple[int, int], *, max_leases: int | None = None
) -> Lease:
    """Write *lease*'s record with *count* ports of its own (the record as written is returned).

    Chosen and written under one hold of the ``leases`` lock, so two acquires can never
    pick the same port: every record written before is seen, and none is written between.
    The same hold counts the records for ``gitxact.maxLeases`` (:func:`refuse_beyond_limit`),
    so acquires made at once can never together pass the limit.
    On PostgreSQL the fleet's claims of this host are excluded too, and the choice is
    recorded on the lease's claim before its record is written (a crash between leaves
    ports on a claim without a lease: held until that claim ends, never handed out twice).
    """
    file = leases.leases_file(repo)
    with repo.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        refuse_beyond_limit(state.leases, lease.agent, max_leases)
        if count:
            taken = {port for other in state.leases.values() if other.agent != lease.agent for port in other.ports}

            def pick(held_by_host: set[int]) -> list[int]:
                return choose(count, port_range, taken | held_by_host)

            chosen = fleet.assign_ports(repo, lease, pick)
            lease = lease.model_copy(update={"ports": pick(set()) if chosen is None else chosen})
        state.leases[lease.agent] = lease
        file.save(state)
    return lease


def refuse_beyond_limit(records: dict[str, Lease], agent: str, limit: int | None) -> None:
    """Refuse (exit 3) a new lease for *agent* when *limit* records exist already.

    Every record counts, whatever its phase or owner: a lease being made, released, or
    left by a dead owner still holds its folder on disk until it is ended; a reap frees those.
    """
    others = sorted(name for name in records if name != agent)
    if limit is None or len(others) < limit:
        return
    named = ", ".join(others[:10]) + (f", and {len(others) - 10} more" if len(others) > 10 else "")
    raise RefusedError(
        f"gitxact.maxLeases is {limit} and {len(others)} lease(s) exist ({named}); no lease was made for {agent!r}",
        hint="release a lease (`gitxact worktree release`), reap ended ones (`gitxact worktree reap`), "
        "or raise git config gitxact.maxLeases",
    )
