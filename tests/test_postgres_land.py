"""The landing queue on PostgreSQL (issue 17): one first-come, first-served queue for a fleet.

Three clones of one project, each playing another host (``GITXACT_TEST_HOST``), land
onto one bare remote through the database's queue: the requests are rows of
``gitxact.land_requests`` and the queue's lock a database named lock, so whoever holds
it serves the oldest requests, whichever host filed them. A lander SIGKILLed while it
holds the lock ends its session: the next lander, on another host, proceeds and settles
the dead one's request (landed if its push happened, failed if not; never twice).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, kill_group, wait_for_file

from fixtures.postgres import PostgresServer
from fixtures.repos import make_repo
from gitxact import Workspace
from gitxact.backends.named import open_named_locks
from gitxact.land.records import queue_name

pytestmark = pytest.mark.slow

CHECK = """set -e
for f in $(ls | grep '^agent-'); do test "$(cat "$f")" = "$f"; done
git rev-parse HEAD >> %(log)s
"""


def _fleet(tmp_path: Path, server: PostgresServer, hosts: int) -> tuple[Path, list[Path]]:
    """A bare remote and *hosts* clones of it, each on the test server in one namespace."""
    seed = make_repo(tmp_path / "seed")
    bare = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(bare), cwd=tmp_path)
    namespace = _namespace(tmp_path)
    clones = []
    for h in range(1, hosts + 1):
        clone = tmp_path / f"host-{h}"
        git("clone", "-q", str(bare), str(clone), cwd=tmp_path)
        git("config", "gitxact.namespace", namespace, cwd=clone)
        proc = gitxact("init", "--backend", server.dsn, cwd=clone, env=_host(h))
        assert proc.returncode == 0, proc.stderr
        clones.append(clone)
    return bare, clones


def _namespace(tmp_path: Path) -> str:
    """Each test's own namespace: the test repositories share their root commit."""
    return "land-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]


def _host(h: int) -> dict[str, str]:
    return {"GITXACT_TEST_HOST": f"host-{h}"}


def _branch(clone: Path, name: str) -> None:
    git("checkout", "-q", "-b", name, "origin/main", cwd=clone)
    (clone / f"{name}.txt").write_text(f"{name}.txt")
    git("add", ".", cwd=clone)
    git("commit", "-q", "-m", f"{name} work", cwd=clone)
    git("checkout", "-q", "--detach", cwd=clone)


def _land(clone: Path, h: int, name: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*GITXACT, "land", name, "--onto", "main", "--remote", "origin", "--json", "--timeout", "300", *extra],
        cwd=clone,
        env={**_env(), **_host(h)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _env() -> dict[str, str]:
    return dict(os.environ)


def _rows(server: PostgresServer, tmp_path: Path, what: str = "id, seq, host, branch, state") -> list[tuple[str, ...]]:
    """This test's rows of the shared queue, in queue order."""
    with psycopg.connect(f"host={server.socket_dir} user=gitxact dbname=postgres", autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT {what} FROM gitxact.land_requests WHERE ns LIKE %s ORDER BY seq",
            (_namespace(tmp_path) + "@%",),
        )
        return [tuple(str(v) for v in r) for r in rows]


def _fsck(bare: Path) -> None:
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _first_parents(bare: Path, since: str) -> list[str]:
    return git("rev-list", "--reverse", "--first-parent", f"{since}..main", cwd=bare).split()


def test_three_hosts_land_through_one_queue_in_request_order(tmp_path: Path, postgres_server: PostgresServer) -> None:
    bare, clones = _fleet(tmp_path, postgres_server, 3)
    log = tmp_path / "checked"
    script = tmp_path / "check.sh"
    script.write_text(CHECK % {"log": log})
    before = git("rev-parse", "main", cwd=bare).strip()
    for h, clone in enumerate(clones, 1):
        for k in (1, 2):
            _branch(clone, f"agent-{h}-{k}")
    check = ["--check", f"sh {script}"]
    # Round 1: the queue is busy until one request of each host waits; then whoever gets
    # the lock first serves all three in one batch, two of them filed on other hosts.
    ws = Workspace(clones[0])
    locks = open_named_locks(ws)
    queue = queue_name("main", str(bare))
    with locks.hold(queue):
        procs = [_land(clone, h, f"agent-{h}-1", "--batch", "3", *check) for h, clone in enumerate(clones, 1)]
        deadline = time.monotonic() + 120
        while len(_rows(postgres_server, tmp_path)) < 3 or len(locks.waiting_sessions(queue)) < 3:
            assert time.monotonic() < deadline, "the three requests never queued"
            assert all(p.poll() is None for p in procs)
            time.sleep(0.05)
    locks.close()
    # Round 2: three more, all at once.
    procs += [_land(clone, h, f"agent-{h}-2", *check) for h, clone in enumerate(clones, 1)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [err[-2000:] for _out, err in outputs]
    docs = {(d := json.loads(out))["request"]: d for out, _err in outputs}
    rows = _rows(postgres_server, tmp_path)
    assert sorted(r[0] for r in rows) == sorted(docs), "every request is a row of the shared queue"
    assert {r[2] for r in rows} == {"host-1", "host-2", "host-3"}
    assert all(r[4] == "landed" for r in rows)
    landed = _first_parents(bare, before)
    assert len(landed) == 6
    # First come, first served across hosts: the remote's history is the rows' order.
    subjects = [git("log", "-1", "--format=%s", c, cwd=bare).strip() for c in landed]
    assert subjects == [f"{r[3]} work" for r in rows]
    assert [c for r in rows for c in docs[r[0]]["commits"]] == landed, "each request's commit is the next one"
    assert [docs[r[0]]["landed_tip"] for r in rows] == [landed[2]] * 3 + landed[3:], "a batch lands at once"
    assert set(log.read_text().split()) >= {d["landed_tip"] for d in docs.values()}, "checked: every tip the remote had"
    first = [docs[r[0]] for r in rows[:3]]
    assert len({d["served_by"] for d in first}) == 1, "one lander served the three hosts' requests"
    assert all(len(d["batch"]) == 3 for d in first)
    assert git("rev-list", "--merges", "main", cwd=bare) == ""
    assert git("for-each-ref", "refs/gitxact/", cwd=bare) == "", "every request's carried ref was deleted"
    _fsck(bare)
    status = json.loads(gitxact("land", "--status", "--json", cwd=clones[0], env=_host(1)).stdout)
    recent = [r["branch"] for q in status["queues"] for r in q["recent"]]
    assert sorted(recent) == sorted(r[3] for r in rows), "--status shows the fleet's queue"


@pytest.mark.parametrize("point", ["in-its-check", "land-moved"])
def test_a_lander_killed_holding_the_database_lock_is_settled_by_another_host(
    tmp_path: Path, postgres_server: PostgresServer, point: str
) -> None:
    bare, clones = _fleet(tmp_path, postgres_server, 2)
    _branch(clones[0], "agent-1-1")
    _branch(clones[1], "agent-2-1")
    before = git("rev-parse", "main", cwd=bare).strip()
    if point == "in-its-check":
        # Host 1's lander holds the queue, stuck in its check; host 2's waits for the lock.
        ready = tmp_path / "checking"
        first = _land(clones[0], 1, "agent-1-1", "--shell", "--check", f"touch {ready}; sleep 600")
        wait_for_file(ready, "host 1's check", first)
        waiting = _land(clones[1], 2, "agent-2-1")
        locks = open_named_locks(Workspace(clones[1]))
        deadline = time.monotonic() + 120
        while len(locks.waiting_sessions(queue_name("main", str(bare)))) < 1:
            assert time.monotonic() < deadline, "host 2 never queued for the lock"
            assert waiting.poll() is None
            time.sleep(0.05)
        locks.close()
        kill_group(first)  # SIGKILL, its check with it: its session, and the lock, end
        first.communicate()
        out, err = waiting.communicate(timeout=300)
        assert waiting.returncode == 0, err
        assert json.loads(out)["state"] == "landed"
    else:
        killed = subprocess.run(
            [*GITXACT, "land", "agent-1-1", "--onto", "main", "--remote", "origin", "--json"],
            cwd=clones[0],
            env={**_env(), **_host(1), "GITXACT_TEST_CRASHPOINT": point},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert killed.returncode in (-9, 137), killed.stderr
        assert [r[4] for r in _rows(postgres_server, tmp_path)] == ["serving"], "left serving, its lander gone"
        # Host 2 lands next, and settles the dead one's request from what it published
        # before its push, without anything from host 1's clone.
        nxt = gitxact(
            "land", "agent-2-1", "--onto", "main", "--remote", "origin", "--json", cwd=clones[1], env=_host(2)
        )
        assert nxt.returncode == 0, nxt.stderr
    states = {r[3]: r[4] for r in _rows(postgres_server, tmp_path)}
    landed = [git("log", "-1", "--format=%s", c, cwd=bare).strip() for c in _first_parents(bare, before)]
    if point == "land-moved":
        assert states == {"agent-1-1": "landed", "agent-2-1": "landed"}
        assert landed == ["agent-1-1 work", "agent-2-1 work"], "landed once, before the next"
    else:
        assert states == {"agent-1-1": "failed", "agent-2-1": "landed"}
        assert landed == ["agent-2-1 work"]
    # Host 1's own leftovers (temporary worktree, step record) go with its next recover.
    recover = gitxact("recover", "--json", cwd=clones[0], env=_host(1))
    assert recover.returncode == 0, recover.stderr
    assert len(git("worktree", "list", "--porcelain", cwd=clones[0]).split("worktree ")) == 2
    assert git("for-each-ref", "refs/gitxact/land/", cwd=clones[0]) == ""
    again = gitxact("land", "agent-1-1", "--onto", "main", "--remote", "origin", "--json", cwd=clones[0], env=_host(1))
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["already"] == (point == "land-moved"), "never landed twice"
    _fsck(bare)


def test_an_unreachable_database_is_exit_75_and_nothing_is_filed(repo: Path) -> None:
    git("branch", "feature", cwd=repo)
    dead = "postgresql:///postgres?host=/nonexistent/gitxact-test&user=nobody"
    proc = gitxact("land", "feature", "--onto", "main", cwd=repo, env={"GITXACT_BACKEND": dead})
    assert_clean_error(proc, 75)
    assert "cannot reach PostgreSQL" in proc.stderr
    assert not (repo / ".git" / "gitxact" / "state" / "landing.json").exists(), "never a fall-back to files"


@pytest.mark.parametrize("crash", [None, "land-candidate-landed"])
def test_a_speculative_round_serves_three_hosts_with_a_failing_middle_one(
    tmp_path: Path, postgres_server: PostgresServer, crash: str | None
) -> None:
    """``--parallel 3`` on the shared queue: one lander builds the three hosts' candidates on
    each other, checks them at once, lands host 1's, refuses host 2's; host 3's is rebuilt
    without it (by whichever lander holds the queue next) and lands. Killed after the first
    landed: the others are settled from the database (their candidates never moved: failed),
    and landing host 3's again lands it once."""
    bare, clones = _fleet(tmp_path, postgres_server, 3)
    log = tmp_path / "checked"
    script = tmp_path / "check.sh"
    script.write_text(CHECK % {"log": log})
    before = git("rev-parse", "main", cwd=bare).strip()
    for h, clone in enumerate(clones, 1):
        _branch(clone, f"agent-{h}-1")
    # Host 2's change breaks the check: its file does not hold its own name.
    git("checkout", "-q", "agent-2-1", cwd=clones[1])
    (clones[1] / "agent-2-1.txt").write_text("wrong")
    git("commit", "-q", "-am", "agent-2-1 breaks it", cwd=clones[1])
    git("checkout", "-q", "--detach", cwd=clones[1])
    extra = ["--parallel", "3", "--check", f"sh {script}"]
    ws = Workspace(clones[0])
    locks = open_named_locks(ws)
    queue = queue_name("main", str(bare))
    env = {"GITXACT_TEST_CRASHPOINT": crash} if crash else {}
    procs = []
    with locks.hold(queue):
        for h, clone in enumerate(clones, 1):
            procs.append(
                subprocess.Popen(
                    [
                        *GITXACT,
                        "land",
                        f"agent-{h}-1",
                        "--onto",
                        "main",
                        "--remote",
                        "origin",
                        "--json",
                        "--timeout",
                        "300",
                        *extra,
                    ],
                    cwd=clone,
                    env={**_env(), **_host(h), **(env if h == 1 else {})},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
            )
            deadline = time.monotonic() + 120
            while len(_rows(postgres_server, tmp_path)) < h or len(locks.waiting_sessions(queue)) < h:
                assert time.monotonic() < deadline, f"host {h}'s request never queued"
                assert all(p.poll() is None for p in procs)
                time.sleep(0.05)
    locks.close()
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = [p.returncode for p in procs]
    states = {r[3]: r[4] for r in _rows(postgres_server, tmp_path)}
    landed = [git("log", "-1", "--format=%s", c, cwd=bare).strip() for c in _first_parents(bare, before)]
    if crash is None:
        assert codes == [0, 3, 0], [err[-2000:] for _out, err in outputs]
        assert states == {"agent-1-1": "landed", "agent-2-1": "refused", "agent-3-1": "landed"}
        docs = [json.loads(out) for out, _err in outputs]
        assert docs[2]["attempts"] == 2, "host 3's candidate was built again without host 2's"
    else:
        assert codes[0] in (-9, 137), outputs[0][1][-2000:]
        assert landed == ["agent-1-1 work"], "the first candidate landed before the kill, the others did not"
        assert states["agent-1-1"] == "landed"
        assert states["agent-2-1"] == "failed", "its lander died at the check step: not landed, not refused"
        assert states["agent-3-1"] == "failed"
        recover = gitxact("recover", "--json", cwd=clones[0], env=_host(1))
        assert recover.returncode == 0, recover.stderr
        assert len(git("worktree", "list", "--porcelain", cwd=clones[0]).split("worktree ")) == 2
        again = gitxact(
            "land", "agent-3-1", "--onto", "main", "--remote", "origin", *extra, cwd=clones[2], env=_host(3)
        )
        assert again.returncode == 0, again.stderr
        landed = [git("log", "-1", "--format=%s", c, cwd=bare).strip() for c in _first_parents(bare, before)]
    assert landed == ["agent-1-1 work", "agent-3-1 work"], "in queue order, each once, host 2's never"
    checked = set(log.read_text().split())
    assert set(_first_parents(bare, before)) <= checked, "the remote only ever at a commit whose check passed"
    left = git("for-each-ref", "--format=%(refname)", "refs/gitxact/", cwd=bare).split()
    # A requester killed before it finished leaves its carried ref (gitxact.land.carry says so): only that one.
    killed = [f"refs/gitxact/land/requests/{r[0]}" for r in _rows(postgres_server, tmp_path) if r[3] == "agent-1-1"]
    assert left == ([] if crash is None else killed[:1])
    _fsck(bare)
