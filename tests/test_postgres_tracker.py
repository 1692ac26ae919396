"""The tracker on both backends (issue 17): the same answers, exact counts under contention,
SIGKILLed writers and a PostgreSQL restart in the middle of a run losing no acknowledged
increment."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psycopg
import pytest
from support.proc import assert_clean_error, gitxact, kill_group, run_parallel

from fixtures.postgres import PostgresServer
from gitxact import OperationFailedError, UsageError, VersionConflictError, Workspace


def test_the_same_answers_on_both_backends(backend_repo: Path) -> None:
    tracker = Workspace(backend_repo, agent="planner").tracker
    assert tracker.get() == {}
    entry = tracker.set("plan", {"z": 1, "a": [1, 2.5, None, "é"], "m": {"b": True}}, expect_version=0)
    assert (entry.version, entry.by) == (1, "planner")
    assert tracker.get("plan")["plan"].value == {"z": 1, "a": [1, 2.5, None, "é"], "m": {"b": True}}
    with pytest.raises(VersionConflictError, match="at version 1, not 0"):
        tracker.set("plan", "other", expect_version=0)
    with pytest.raises(VersionConflictError, match="at version 1, not 7"):
        tracker.set("plan", "other", expect_version=7)
    assert tracker.set("plan", "step 2", expect_version=1).version == 2
    with pytest.raises(VersionConflictError, match="at version 0, not 3"):
        tracker.set("absent", 1, expect_version=3)
    assert tracker.incr("n").value == 1
    assert tracker.incr("n", 41).value == 42
    assert tracker.incr("n", -50).value == -8
    assert tracker.incr("big", 2**70).value == 2**70  # JSON integers are unbounded; so is numeric
    assert tracker.incr("big").value == 2**70 + 1
    with pytest.raises(OperationFailedError, match="holds str, not an integer"):
        tracker.incr("plan")
    tracker.set("f", 1.5)
    with pytest.raises(OperationFailedError, match="holds float, not an integer"):
        tracker.incr("f")
    tracker.set("b", True)
    with pytest.raises(OperationFailedError, match="holds bool, not an integer"):
        tracker.incr("b")
    with pytest.raises(OperationFailedError, match="no key 'missing'"):
        tracker.get("missing")
    with pytest.raises(UsageError):
        tracker.set("k", float("nan"))
    with pytest.raises(UsageError):
        tracker.incr("../etc")
    with pytest.raises(VersionConflictError):
        tracker.delete("n", expect_version=1)
    tracker.delete("n", expect_version=3)
    with pytest.raises(OperationFailedError, match="no key 'n'"):
        tracker.delete("n")
    assert sorted(tracker.get()) == ["b", "big", "f", "plan"]
    assert tracker.get("plan")["plan"].version == 2


_WORKER = textwrap.dedent(
    """
    import sys
    from gitxact import Workspace
    tracker = Workspace(sys.argv[1]).tracker
    for _ in range(int(sys.argv[2])):
        tracker.incr("count")
    """
)


def test_processes_lose_no_increment(backend_repo: Path) -> None:
    """8 processes x 25 increments through the library: exactly 200, version 200."""
    where = backend_repo
    results = run_parallel([[sys.executable, "-c", _WORKER, str(where), "25"] for _ in range(8)], where)
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
    entry = Workspace(where).tracker.get("count")["count"]
    assert (entry.value, entry.version) == (200, 200)


_ACKNOWLEDGING_WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    from gitxact import Workspace
    from gitxact.backends.base import BackendUnavailableError
    repo, stop, most = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tracker = Workspace(repo).tracker
    acked = failed = 0
    while not os.path.exists(stop) and acked + failed < most:
        try:
            tracker.incr("count")
        except BackendUnavailableError:
            failed += 1  # not acknowledged: the restart cut it off, or the server is down
            time.sleep(0.05)
        else:
            acked += 1
    print(json.dumps({"acked": acked, "failed": failed}))
    """
)


def _count(server: PostgresServer, repo: Path) -> int:
    ident = json.loads((repo / ".git" / "gitxact" / "backend.json").read_text())["namespace"]
    try:
        with psycopg.connect(f"host={server.socket_dir} user=gitxact dbname=postgres", autocommit=True) as conn:
            row = conn.execute(
                "SELECT (value #>> '{}')::bigint FROM gitxact.tracker WHERE ns = %s AND key = 'count'", (ident,)
            ).fetchone()
    except psycopg.OperationalError:
        return -1
    return int(row[0]) if row else 0


def _wait_for_count(server: PostgresServer, repo: Path, at_least: int) -> int:
    deadline = time.monotonic() + 120
    while (count := _count(server, repo)) < at_least:
        assert time.monotonic() < deadline, f"the count stayed at {count}, below {at_least}"
        time.sleep(0.05)
    return count


@pytest.mark.slow
def test_a_server_restart_mid_run_loses_no_acknowledged_increment(
    pg_repo: Path, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    argv = [sys.executable, "-c", _ACKNOWLEDGING_WORKER, str(pg_repo), str(stop), "2000"]
    procs = [
        subprocess.Popen(argv, cwd=pg_repo, stdout=-1, stderr=-1, text=True, start_new_session=True) for _ in range(16)
    ]
    try:
        _wait_for_count(postgres_server, pg_repo, 50)
        postgres_server.stop("fast")  # every session ended, in-flight statements rolled back
        try:  # meanwhile the CLI fails clearly (exit 75, nothing acknowledged), as the workers do
            down = gitxact("tracker", "incr", "count", cwd=pg_repo)
        finally:
            postgres_server.start()
        assert_clean_error(down, 75)
        assert "cannot reach PostgreSQL" in down.stderr
        after = _count(postgres_server, pg_repo)
        _wait_for_count(postgres_server, pg_repo, after + 50)  # the workers carry on against the new server
        stop.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        stop.touch()
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), [err[-800:] for _, err in outputs]
    reports = [json.loads(out) for out, _ in outputs]
    acked = sum(r["acked"] for r in reports)
    assert _count(postgres_server, pg_repo) == acked
    assert Workspace(pg_repo).tracker.get("count")["count"].version == acked


_ACK_BY_BYTE = textwrap.dedent(
    """
    import os, sys
    from gitxact import Workspace
    tracker = Workspace(sys.argv[1]).tracker
    fd = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    while True:
        tracker.incr("count")
        os.write(fd, b".")  # acknowledged: one byte per increment that returned
    """
)


def test_sigkilled_writers_lose_no_acknowledged_increment(backend_repo: Path, tmp_path: Path) -> None:
    """4 writers SIGKILLed mid-run: every acknowledged increment is there, and at most one
    more per writer (the one in flight may have committed unseen); the tracker stays usable."""
    acks = [tmp_path / f"acks{i}" for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _ACK_BY_BYTE, str(backend_repo), str(ack)],
            cwd=backend_repo,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for ack in acks
    ]
    tracker = Workspace(backend_repo).tracker
    try:
        deadline = time.monotonic() + 120
        while sum(ack.stat().st_size for ack in acks if ack.exists()) < 40:
            assert all(p.poll() is None for p in procs), "a writer died before it was killed"
            assert time.monotonic() < deadline, "the writers never got going"
            time.sleep(0.02)
    finally:
        for proc in procs:
            kill_group(proc)
    acked = sum(ack.stat().st_size for ack in acks if ack.exists())
    entry = tracker.get("count")["count"]
    assert acked <= entry.value <= acked + len(procs)
    assert entry.version == entry.value
    assert tracker.incr("count").value == entry.value + 1, "nothing a killed writer held is left behind"
