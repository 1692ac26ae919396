"""The agent registry in PostgreSQL: which host leases which agent name and branch.

On files, ``leases.json`` keeps two agents of one host from leasing one name or branch.
Across hosts each clone has its own file, so the fleet's claims live here, one row per
agent of the namespace (primary key) and one per branch (unique): two hosts can never
hold the same agent name or branch, whatever they race. A claim names its owner (host,
pid, process start) and the lease it belongs to (``token``, a digest of the lease's
token), and lives ``ttl`` seconds past its last heartbeat. A claim ends by release, by
TTL (whoever claims next takes an expired one over), or when its owner is provably dead
on the claimer's own host (pid gone or recycled); a live owner's claim on another host
ends only by TTL, as on files.

Every change of a claim is a compare-and-set on its owner and token: a host cut off
while its claim expired and another host took the agent over can release, renew or
reap its stale lease without touching the new owner's claim (:class:`ClaimRef`).

Wired into ``gitxact worktree acquire/release/renew/list`` by :mod:`gitxact.worktrees.fleet`:
:meth:`AgentRegistry.claim` before ``git worktree add``, :meth:`renew` with the lease's
heartbeat, :meth:`release` after the worktree is removed, :meth:`list` behind
``worktree list --all-hosts``, :meth:`reapable` and :meth:`end` behind ``worktree reap``
(which ends dead claims of every host without waiting for someone to claim them), and
:meth:`assign_ports` behind a lease's ports: a claim carries them, so one host's clones
never hand out the same port, and they end with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors

from gitxact.backends.base import BackendUnavailableError
from gitxact.backends.pg_locks import lock_key
from gitxact.backends.postgres import NOW, Database, host_identity
from gitxact.errors import RefusedError
from gitxact.util.identity import ProcessIdentity, host_name, process_start_token
from gitxact.util.names import validate_agent
from gitxact.util.value import Value

if TYPE_CHECKING:
    from gitxact.backends.choice import Choice
    from gitxact.backends.postgres import Conn
    from gitxact.core.repo import Repo

_COLUMNS = "agent, branch, host, pid, start, path, created, heartbeat, ttl, token, ports"
#: The claim is the one *ref* names: its owner and its lease's token (a claim written by a
#: gitxact before schema 4 has no token; then the owner's process start decides).
_IS_REF = (
    "host = %(host)s AND pid = %(pid)s AND (token = %(token)s"
    " OR (token IS NULL AND start IS NOT DISTINCT FROM %(start)s::numeric))"
)


class Owner(Value):
    """The process a claim follows, with the host name other hosts see (test override included)."""

    __slots__ = ("host", "pid", "start")

    def __init__(self, *, pid: int, host: str, start: int | None) -> None:
        self.pid = pid
        self.host = host
        self.start = start

    @classmethod
    def of(cls, pid: int | None = None) -> Owner:
        pid = os.getpid() if pid is None else pid
        return cls(pid=pid, host=host_identity(), start=process_start_token(pid))

    def provably_dead(self) -> bool:
        """Only an owner on this host can be checked; elsewhere it counts as alive."""
        if self.host != host_identity():
            return False
        return ProcessIdentity(pid=self.pid, host=host_name(), start=self.start).is_dead()

    def provably_alive(self) -> bool:
        """Only an owner on this host can be proven to run (same pid and start time)."""
        if self.host != host_identity():
            return False
        return ProcessIdentity(pid=self.pid, host=host_name(), start=self.start).is_alive()


class ClaimRef(Value):
    """Which claim a lease made: its owner and its token (what every change compares)."""

    __slots__ = ("owner", "token")

    def __init__(self, owner: Owner, token: str | None) -> None:
        self.owner = owner
        self.token = token

    def params(self) -> dict[str, Any]:
        return {"host": self.owner.host, "pid": self.owner.pid, "start": self.owner.start, "token": self.token}


class AgentClaim(Value):
    """One row of the registry, as ``worktree list --all-hosts`` would show it."""

    __slots__ = (
        "agent",
        "branch",
        "created",
        "expired",
        "heartbeat",
        "now",
        "owner",
        "path",
        "ports",
        "token",
        "ttl",
    )

    def __init__(self, row: tuple[Any, ...], now: float) -> None:
        agent, branch, host, pid, start, path, created, heartbeat, ttl, token, ports = row
        self.agent: str = agent
        self.branch: str = branch
        self.owner = Owner(pid=int(pid), host=host, start=int(start) if start is not None else None)
        self.path: str | None = path
        self.created = float(created)
        self.heartbeat = float(heartbeat)
        self.ttl = float(ttl)
        self.token: str | None = token
        self.ports: list[int] = [int(port) for port in ports or ()]
        #: The server's clock when the row was read (every host's expiry is judged by it).
        self.now = now
        self.expired = self.heartbeat + self.ttl < now

    @property
    def lapsed(self) -> bool:
        """Expired, and its owner not provably running here: a reap ends it, and its ports
        are free (an expired claim whose owner runs on this host is kept: issue 24)."""
        return self.expired and not self.owner.provably_alive()

    def describe(self) -> str:
        return f"agent {self.agent} (branch {self.branch}) held by pid {self.owner.pid} on {self.owner.host}"

    def ref(self) -> ClaimRef:
        return ClaimRef(self.owner, self.token)


class AgentRegistry:
    """Claims of agent names and branches in one namespace, shared by every host."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn: Conn | None = None

    @classmethod
    def open(cls, repo: Repo, choice: Choice) -> AgentRegistry:
        return cls(Database.of(repo, choice))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __del__(self) -> None:
        self.close()

    def _connection(self) -> Conn:
        if self._conn is None or self._conn.closed:
            self._conn = self._db.connect("gitxact registry")
        return self._conn

    def _rows(self, doing: str, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        try:
            cursor = conn.execute(sql, {"ns": self._db.ns.ident, **params})
            return cursor.fetchall() if cursor.description else []
        except psycopg.Error as exc:
            raise self._failure(exc, doing, conn) from None

    def _failure(self, exc: psycopg.Error, doing: str, conn: Conn) -> Exception:
        error = self._db.failure(exc, doing, conn)
        if isinstance(error, BackendUnavailableError):
            self.close()
        return error

    def _now(self) -> float:
        return float(self._rows("reading the server's clock", f"SELECT {NOW}", {})[0][0])

    # -- claims -------------------------------------------------------------------------

    def claim(
        self,
        agent: str,
        branch: str,
        *,
        ttl: float,
        owner: Owner | None = None,
        path: str | None = None,
        token: str | None = None,
    ) -> AgentClaim:
        """Claim *agent* and *branch* for *owner* (default: this process) and the lease
        *token* names; exit 3 naming the live holder when another owner has either.
        Claiming again for the same owner renews (and takes the new token). An expired
        claim, or one whose owner died on this host, is taken over."""
        validate_agent(agent)
        owner = owner or Owner.of()
        self._end_dead_claims(agent, branch)
        params = {
            "agent": agent,
            "branch": branch,
            "host": owner.host,
            "pid": owner.pid,
            "start": owner.start,
            "path": path,
            "ttl": ttl,
            "token": token,
        }
        conn = self._connection()
        try:
            with conn.transaction():
                # An expired claim on the branch by another agent goes first: the branch is free.
                conn.execute(
                    f"DELETE FROM gitxact.agents WHERE ns = %(ns)s AND branch = %(branch)s AND agent <> %(agent)s"
                    f" AND heartbeat + ttl < {NOW}",
                    {"ns": self._db.ns.ident, **params},
                )
                rows = conn.execute(
                    f"INSERT INTO gitxact.agents AS a (ns, {_COLUMNS}) VALUES (%(ns)s, %(agent)s, %(branch)s,"
                    f" %(host)s, %(pid)s, %(start)s, %(path)s, {NOW}, {NOW}, %(ttl)s, %(token)s, '{{}}')"
                    " ON CONFLICT (ns, agent) DO UPDATE SET branch = EXCLUDED.branch, host = EXCLUDED.host,"
                    " pid = EXCLUDED.pid, start = EXCLUDED.start, path = EXCLUDED.path, token = EXCLUDED.token,"
                    " ports = '{}',"  # a claim made again is a new lease's: its ports are assigned anew
                    " created = CASE WHEN a.host = EXCLUDED.host AND a.pid = EXCLUDED.pid THEN a.created"
                    " ELSE EXCLUDED.created END, heartbeat = EXCLUDED.heartbeat, ttl = EXCLUDED.ttl"
                    " WHERE a.heartbeat + a.ttl < EXCLUDED.heartbeat OR (a.host = EXCLUDED.host"
                    " AND a.pid = EXCLUDED.pid AND a.start IS NOT DISTINCT FROM EXCLUDED.start)"
                    f" RETURNING {_COLUMNS}, {NOW}",
                    {"ns": self._db.ns.ident, **params},
                ).fetchall()
        except pg_errors.UniqueViolation:
            holder = self._holder("branch", branch)
            raise RefusedError(
                f"branch {branch!r} is claimed by another agent across the fleet: "
                + (holder.describe() if holder else "(released meanwhile; try again)"),
                hint="pick another branch, or end that lease first",
            ) from None
        except psycopg.Error as exc:
            raise self._failure(exc, f"claiming agent {agent}", conn) from None
        if not rows:
            holder = self._holder("agent", agent)
            raise RefusedError(
                "agent name taken across the fleet: "
                + (holder.describe() if holder else f"{agent} (released meanwhile; try again)"),
                hint="pick another agent name, or end that lease on its host (or wait for its TTL)",
            )
        return AgentClaim(rows[0][:-1], float(rows[0][-1]))

    def _holder(self, column: str, value: str) -> AgentClaim | None:
        rows = self._rows(
            "reading the registry",
            f"SELECT {_COLUMNS}, {NOW} FROM gitxact.agents WHERE ns = %(ns)s AND {column} = %(value)s",
            {"value": value},
        )
        return AgentClaim(rows[0][:-1], float(rows[0][-1])) if rows else None

    def _end_dead_claims(self, agent: str, branch: str) -> None:
        """Claims on *agent* or *branch* whose owner provably died on this host end now."""
        for claim in self.list():
            if (claim.agent == agent or claim.branch == branch) and claim.owner.provably_dead():
                self._rows(
                    "ending a dead owner's claim",
                    f"DELETE FROM gitxact.agents WHERE ns = %(ns)s AND agent = %(agent)s AND {_IS_REF}",
                    {"agent": claim.agent, **claim.ref().params()},
                )

    def renew(self, agent: str, ref: ClaimRef) -> AgentClaim:
        """Heartbeat: the claim lives another ``ttl`` seconds. Exit 3, changing nothing, if it
        is no longer *ref*'s (expired and taken over, or ended by a reap)."""
        rows = self._rows(
            f"renewing agent {agent}",
            f"UPDATE gitxact.agents SET heartbeat = {NOW} WHERE ns = %(ns)s AND agent = %(agent)s AND {_IS_REF}"
            f" RETURNING {_COLUMNS}, {NOW}",
            {"agent": agent, **ref.params()},
        )
        if not rows:
            raise RefusedError(
                f"the fleet's claim of agent {agent} is no longer this lease's: {self.whose(agent)};"
                " nothing was changed",
                hint="the lease was lost while this host could not renew it; `gitxact worktree release` ends it here,"
                " touching nothing of the other host's",
            )
        return AgentClaim(rows[0][:-1], float(rows[0][-1]))

    def release(self, agent: str, ref: ClaimRef) -> bool:
        """End the claim if it is still *ref*'s; False (nothing touched) if it is gone or another's."""
        rows = self._rows(
            f"releasing agent {agent}",
            f"DELETE FROM gitxact.agents WHERE ns = %(ns)s AND agent = %(agent)s AND {_IS_REF} RETURNING agent",
            {"agent": agent, **ref.params()},
        )
        return bool(rows)

    def assign_ports(self, agent: str, ref: ClaimRef, pick: Callable[[set[int]], list[int]]) -> list[int]:
        """Record on *agent*'s claim (if still *ref*'s) the ports *pick* chooses, given those
        every other claim of the same host holds (any clone's; a lapsed one holds none).

        Read and written in one transaction under an advisory lock of the host
        (``ports`` and the host name, :func:`lock_key`): two clones allocating at once
        are serialized, so each sees the other's ports. The caller holds its clone's
        ``leases`` lock first, the database's lock second, as every allocator does. The
        lock ends with the transaction, or with the session if the process dies. Exit 3,
        nothing recorded, when *pick* refuses or the claim is no longer *ref*'s.
        """
        host = ref.owner.host
        params = {"ns": self._db.ns.ident, "agent": agent, **ref.params()}
        conn = self._connection()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key(self._db.ns, f"ports\0{host}"),))
                rows = conn.execute(
                    f"SELECT {_COLUMNS}, {NOW} FROM gitxact.agents WHERE ns = %(ns)s AND host = %(host)s"
                    " AND agent <> %(agent)s",
                    params,
                ).fetchall()
                claims = [AgentClaim(row[:-1], float(row[-1])) for row in rows]
                chosen = pick({port for claim in claims if not claim.lapsed for port in claim.ports})
                if not conn.execute(
                    f"UPDATE gitxact.agents SET ports = %(ports)s::integer[] WHERE ns = %(ns)s AND agent = %(agent)s"
                    f" AND {_IS_REF} RETURNING agent",
                    {**params, "ports": chosen},
                ).fetchall():
                    raise RefusedError(
                        f"the fleet's claim of agent {agent} is no longer this lease's: {self.whose(agent)};"
                        " no ports were recorded",
                        hint="acquire again",
                    )
        except psycopg.Error as exc:
            raise self._failure(exc, f"assigning ports to agent {agent}", conn) from None
        return chosen

    def clear_ports(self, agent: str, ref: ClaimRef) -> None:
        """The claim (if still *ref*'s) holds no ports: its acquire was undone."""
        self._rows(
            f"clearing the ports of agent {agent}",
            f"UPDATE gitxact.agents SET ports = '{{}}' WHERE ns = %(ns)s AND agent = %(agent)s AND {_IS_REF}",
            {"agent": agent, **ref.params()},
        )

    def whose(self, agent: str) -> str:
        """Who claims *agent* now, for a message: the claim, or that there is none."""
        holder = self._holder("agent", agent)
        return f"now {holder.describe()}" if holder else "it has ended (expired, and reaped or taken and released)"

    def reapable(self, ended_here: Mapping[str, ClaimRef] | None = None) -> list[tuple[AgentClaim, str]]:
        """The claims a reap on this host ends, each with why; never a live claim of another host.

        Another host's processes cannot be checked from here, so its claims end only by
        expiry (TTL past the last heartbeat). This host's claims also end when their owner
        is provably dead, or when their agent's lease was just ended here (*ended_here*,
        agent -> the claim that lease made: the fleet's claim ends with the lease, whatever
        ended it, but only if it is still that lease's); never by expiry while their owner
        provably runs here (its local lease is kept too: issue 24).
        """
        ended_here = ended_here or {}
        found: list[tuple[AgentClaim, str]] = []
        here = host_identity()
        for claim in self.list():
            if claim.lapsed:
                found.append((claim, f"no heartbeat for {claim.now - claim.heartbeat:.0f}s (ttl {claim.ttl:g}s)"))
            elif claim.owner.host == here and claim.owner.provably_dead():
                found.append((claim, f"owner pid {claim.owner.pid} on {claim.owner.host} is gone"))
            elif claim.owner.host == here and claim.agent in ended_here and _same(claim, ended_here[claim.agent]):
                found.append((claim, "its lease on this host was ended by this reap"))
        return found

    def end(self, claim: AgentClaim) -> bool:
        """End *claim* if it is still what was read: the same owner and, if it was read as
        expired, still expired (a heartbeat meanwhile keeps it), the same lease's token.
        False when it was kept."""
        rows = self._rows(
            f"ending the claim of agent {claim.agent}",
            "DELETE FROM gitxact.agents WHERE ns = %(ns)s AND agent = %(agent)s AND host = %(host)s"
            " AND pid = %(pid)s AND start IS NOT DISTINCT FROM %(start)s::numeric"
            " AND token IS NOT DISTINCT FROM %(token)s"
            f" AND (NOT %(expired)s OR heartbeat + ttl < {NOW}) RETURNING agent",
            {"agent": claim.agent, "expired": claim.expired, **claim.ref().params()},
        )
        return bool(rows)

    def list(self) -> list[AgentClaim]:
        """Every claim of the namespace, every host's, oldest first (``worktree list --all-hosts``)."""
        rows = self._rows(
            "listing the registry",
            f"SELECT {_COLUMNS}, {NOW} FROM gitxact.agents WHERE ns = %(ns)s ORDER BY created, agent",
            {},
        )
        return [AgentClaim(row[:-1], float(row[-1])) for row in rows]


def _same(claim: AgentClaim, ref: ClaimRef) -> bool:
    """*claim* is the one *ref* names (the SQL of :data:`_IS_REF`, on a row already read)."""
    owner = claim.owner
    if (owner.host, owner.pid) != (ref.owner.host, ref.owner.pid):
        return False
    return claim.token == ref.token if claim.token is not None else owner.start == ref.owner.start
