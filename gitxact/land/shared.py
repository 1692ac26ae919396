"""The landing queue in PostgreSQL: one first-come, first-served order for every clone and host.

With PostgreSQL chosen, a request is a row of ``gitxact.land_requests`` (its ``seq`` is
its place in the namespace) and a target's queue lock is the database named lock of the
same name (:mod:`gitxact.backends.pg_locks`), so landers on every host take turns and
whoever holds a queue serves its oldest pending requests, whichever clone filed them.

* **Which requests another clone can serve.** A remote target's queue is keyed by the
  remote's URL, so every clone pushing to it shares it; its requester pushes the
  request's tip to ``refs/gitxact/land/requests/<id>`` on that remote before filing, so
  any lander can fetch the commits. A *local* target is a branch of one clone: its
  queue name carries the clone's identity (host and folder), and only that clone's
  landers ever hold it.
* **What stays local.** The step records of a landing in progress name a temporary
  worktree and a fetched ref of the lander's clone: they stay in that clone's
  ``landing.json`` (:class:`~gitxact.land.records.LandingFile`), finished by its next
  lander or ``gitxact recover`` as on files.
* **A lander that dies** ends its database session, and with it the queue's lock: the
  next lander, on any host, takes the lock and finds the dead one's requests still
  ``serving``. Its own clone's are settled from the local step record; another clone's
  from what the dead lander *published before it moved the target* (the candidate and
  the outcomes, :meth:`SharedLanding.publish_step`): the requests landed if the remote
  target contains that candidate, else nothing moved and they failed. So a request is
  never lost and never landed twice. Publishing is conditional on the lander's session
  still holding the lock, so a lander whose session ended never moves the target.

Changes are one transaction each, under a transaction-scoped advisory lock of the
namespace (the database's counterpart of the ``landing`` resource lock), read and
written through the same :class:`~gitxact.land.records.Landing` model as the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psycopg

from gitxact.backends.pg_locks import IN_PG_LOCKS, lock_key, lock_tag
from gitxact.backends.postgres import Database, host_identity
from gitxact.errors import LockLostError
from gitxact.land import candidate, carry
from gitxact.land.records import (
    FINAL,
    HISTORY_LIMIT,
    KEEP_UNREAD,
    LOCK,
    Landing,
    LandingFile,
    Outcome,
    Request,
    RequestState,
    Work,
    queue_name,
)
from gitxact.util import faults

if TYPE_CHECKING:
    from gitxact.backends.choice import Choice
    from gitxact.backends.postgres import Conn
    from gitxact.core.repo import Repo

_OPEN = "('pending', 'serving')"
_FINAL_SQL = "(" + ", ".join(f"'{s}'" for s in FINAL) + ")"


def clone_id(repo: Repo) -> str:
    """This clone among the fleet's: the host identity and the common dir's real path."""
    return f"{host_identity()}:{os.path.realpath(repo.layout.common_dir)}"


class _Conns(threading.local):
    def __init__(self) -> None:
        self.conn: Conn | None = None


class SharedLanding(LandingFile):
    """The requests in the database, the steps in this clone's ``landing.json``."""

    shared = True
    poll = 1.0  # a fleet's waiters each read the table this often for their progress line

    def __init__(self, repo: Repo, db: Database) -> None:
        super().__init__(repo)
        self.db = db
        self.clone = clone_id(repo)
        self.session: int | None = None
        self._conns = _Conns()
        self._all: list[Conn] = []
        self._guard = threading.Lock()
        # The advisory key serializing changes of this namespace's queues.
        self._change_key = lock_key(db.ns, "land\0requests")

    @classmethod
    def open(cls, repo: Repo, choice: Choice) -> SharedLanding:
        return cls(repo, Database.of(repo, choice))

    # -- connections ----------------------------------------------------------------------

    def _conn(self) -> Conn:
        conn = self._conns.conn
        if conn is None or conn.closed or conn.broken:
            conn = self.db.connect("gitxact land")
            self._conns.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    def _failure(self, exc: psycopg.Error, doing: str) -> Exception:
        conn = self._conns.conn
        error = self.db.failure(exc, doing, conn)
        if conn is not None and (conn.broken or conn.closed):
            self._conns.conn = None
        return error

    def close(self) -> None:
        with self._guard:
            mine, self._all = self._all, []
        for conn in mine:
            conn.close()
        self._conns.conn = None

    # -- reading and changing ---------------------------------------------------------------

    def queue_of(self, target: str, remote_url: str | None) -> str:
        return queue_name(target, remote_url, clone=None if remote_url is not None else self.clone)

    def holding(self, session: int | None) -> None:
        self.session = session

    def _load(self, conn: Conn) -> list[Request]:
        """The namespace's open requests and recent outcomes, but other clones' local targets:
        only their own clone can serve or settle those (its ``main`` is not ours)."""
        rows = conn.execute(
            "SELECT request FROM gitxact.land_requests WHERE ns = %(ns)s"
            " AND (remote_url IS NOT NULL OR clone = %(clone)s)"
            f" AND (state IN {_OPEN} OR id IN (SELECT id FROM gitxact.land_requests WHERE ns = %(ns)s"
            f" AND state IN {_FINAL_SQL} ORDER BY finished DESC LIMIT %(keep)s)) ORDER BY seq",
            {"ns": self.db.ns.ident, "clone": self.clone, "keep": HISTORY_LIMIT},
        ).fetchall()
        return [Request.model_validate(row[0]) for row in rows]

    def peek(self) -> Landing:
        local = super().peek()
        try:
            requests = self._load(self._conn())
        except psycopg.Error as exc:
            raise self._failure(exc, "reading the landing queue") from None
        return Landing(requests=requests, work=local.work)

    def find(self, request_id: str) -> Request | None:
        try:
            row = (
                self._conn()
                .execute(
                    "SELECT request FROM gitxact.land_requests WHERE ns = %s AND id = %s",
                    (self.db.ns.ident, request_id),
                )
                .fetchone()
            )
        except psycopg.Error as exc:
            raise self._failure(exc, "reading a landing request") from None
        return Request.model_validate(row[0]) if row else None

    @contextlib.contextmanager
    def change(self) -> Iterator[Landing]:
        """One transaction of the namespace's queues, plus this clone's steps (under ``landing``).

        The local lock is taken first, then the database's: every process takes them in
        that order, so two changes never wait for each other crosswise.
        """
        with self.repo.locks.resource(LOCK):
            local = self.file.load(repair=True)
            work_before = [w.model_dump(mode="json") for w in local.work]
            conn = self._conn()
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._change_key,))
                    row = conn.execute(
                        "SELECT coalesce(max(seq), 0) + 1 FROM gitxact.land_requests WHERE ns = %s",
                        (self.db.ns.ident,),
                    ).fetchone()
                    state = Landing(next_seq=int(row[0]) if row else 1, requests=self._load(conn), work=local.work)
                    before = {r.id: r.model_dump(mode="json") for r in state.requests}
                    yield state
                    self._write(conn, state, before)
            except psycopg.Error as exc:
                raise self._failure(exc, "changing the landing queue") from None
            if [w.model_dump(mode="json") for w in state.work] != work_before:
                local.work = state.work
                local.requests = []
                self.file.save(local)
        faults.journal_step()

    def _write(self, conn: Conn, state: Landing, before: dict[str, dict[str, Any]]) -> None:
        ns = self.db.ns.ident
        for request in state.requests:
            dump = request.model_dump(mode="json")
            old = before.get(request.id)
            if old == dump:
                continue
            params = {
                "ns": ns,
                "id": request.id,
                "state": request.state,
                "outcome": json.dumps(dump["outcome"]) if request.outcome else None,
                "request": json.dumps(dump),
                "finished": request.finished,
            }
            if old is None:
                conn.execute(
                    "INSERT INTO gitxact.land_requests (ns, id, seq, queue, target, remote_url, branch, tip, strategy,"
                    " agent, host, clone, state, outcome, request, filed, finished) VALUES (%(ns)s, %(id)s, %(seq)s,"
                    " %(queue)s, %(target)s, %(url)s, %(branch)s, %(tip)s, %(strategy)s, %(agent)s, %(host)s,"
                    " %(clone)s, %(state)s, %(outcome)s, %(request)s, %(filed)s, %(finished)s)",
                    {
                        **params,
                        "seq": request.seq,
                        "queue": request.queue,
                        "target": request.target,
                        "url": candidate.remote_url(self.repo, request.remote) if request.remote else None,
                        "branch": request.branch,
                        "tip": request.tip,
                        "strategy": request.strategy,
                        "agent": request.owner.agent,
                        "host": host_identity(),
                        "clone": self.clone,
                        "filed": request.filed,
                    },
                )
                # Old outcomes go as on files: kept an hour for a requester that reads late.
                conn.execute(
                    f"DELETE FROM gitxact.land_requests WHERE ns = %s AND state IN {_FINAL_SQL} AND finished < %s",
                    (ns, time.time() - KEEP_UNREAD),
                )
            elif request.state == "serving" and old.get("state") != "serving":
                conn.execute(
                    "UPDATE gitxact.land_requests SET state = %(state)s, outcome = %(outcome)s, request = %(request)s,"
                    " finished = %(finished)s, lander_clone = %(clone)s, lander_host = %(host)s, lander_pid = %(pid)s,"
                    " lander_session = %(session)s, step = NULL WHERE ns = %(ns)s AND id = %(id)s",
                    {**params, "clone": self.clone, "host": host_identity(), "pid": os.getpid()}
                    | {"session": self.session},
                )
            else:
                conn.execute(
                    "UPDATE gitxact.land_requests SET state = %(state)s, outcome = %(outcome)s, request = %(request)s,"
                    " finished = %(finished)s WHERE ns = %(ns)s AND id = %(id)s",
                    params,
                )

    # -- a lander's death, seen from another clone -----------------------------------------------

    def publish_step(self, work: Work) -> None:
        """Before the target moves: the candidate and outcomes, for whoever settles after a death.

        Written only while this lander's session still holds the queue's lock (one
        statement checks both), else :class:`LockLostError` and nothing moves: a lander
        whose session ended may already have been settled by the next one.
        """
        step = {
            "work": work.id,
            "phase": work.phase,
            "base": work.base,
            "candidate": work.candidate,
            "landed": {k: v.model_dump(mode="json") for k, v in work.landed.items()},
        }
        try:
            rows = (
                self._conn()
                .execute(
                    "UPDATE gitxact.land_requests SET step = %(step)s WHERE ns = %(ns)s AND id = ANY(%(ids)s)"
                    " AND state = 'serving' AND lander_session = %(session)s AND EXISTS (SELECT 1 FROM pg_locks l"
                    f" WHERE l.pid = %(session)s AND l.granted AND {IN_PG_LOCKS}) RETURNING id",
                    {
                        "step": json.dumps(step),
                        "ns": self.db.ns.ident,
                        "ids": work.requests,
                        "session": self.session,
                        **lock_tag(lock_key(self.db.ns, work.queue)),
                    },
                )
                .fetchall()
            )
        except psycopg.Error as exc:
            raise self._failure(exc, "publishing a landing step") from None
        if len(rows) != len(set(work.requests)):
            raise LockLostError(
                f"the lock of landing queue {work.queue} was lost before {work.target} moved: nothing moved",
                hint="its database session ended (a server restart or a network cut); land again",
            )

    def settle_foreign(self, queue: str) -> list[str]:
        """Requests another clone's lander left ``serving``: settled from the step it published.

        The caller holds *queue*'s lock, so no live lander serves them: the lander that
        took them up ended (its session, and the lock, with it).
        """
        try:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, remote_url, target, step, lander_host, lander_pid FROM gitxact.land_requests"
                    " WHERE ns = %s AND queue = %s AND state = 'serving' AND remote_url IS NOT NULL"
                    " AND lander_clone IS DISTINCT FROM %s"
                    " ORDER BY seq",
                    (self.db.ns.ident, queue, self.clone),
                )
                .fetchall()
            )
        except psycopg.Error as exc:
            raise self._failure(exc, "reading the landing queue") from None
        if not rows:
            return []
        decided: dict[str, tuple[RequestState, Outcome]] = {}
        for request_id, url, target, step, host, pid in rows:
            who = f"its lander (pid {pid} on {host})"
            phase = step.get("phase") if step else None
            tip = step.get("candidate") if step else None
            if phase in ("move", "cleanup") and tip and url and carry.remote_contains(self.repo, url, target, tip):
                landed = (step or {}).get("landed", {}).get(request_id)
                outcome = Outcome.model_validate(landed) if landed else Outcome(reason="landed", landed_tip=tip)
                decided[request_id] = ("landed", outcome)
            else:
                reason = f"{who} stopped before {target} moved; nothing landed; request it again"
                decided[request_id] = ("failed", Outcome(reason=reason, code=1))
        actions: list[str] = []
        with self.change() as state:
            for request_id, (final, outcome) in decided.items():
                request = state.request(request_id)
                if request is None or request.state in FINAL:
                    continue
                state.finish(request, final, outcome)
                actions.append(f"{request_id}: {final} ({outcome.reason})")
        return actions
