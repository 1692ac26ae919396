"""Leases across hosts (issue 17): with PostgreSQL, acquire claims the agent in the fleet's
registry, release ends the claim, `worktree list --all-hosts` shows every host's, `status`
shows the fleet's lock holders, waiters and claims, and `reap` ends dead claims.

Two hosts are two clones of one project in one namespace, their processes given other
host identities (``GITXACT_TEST_HOST``, test-only)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from support.fleet import second_host, start_named_holder
from support.proc import assert_clean_error, gitxact, kill_group, owner_process

from fixtures.postgres import PostgresServer
from gitxact import Workspace
from gitxact.backends import schema
from gitxact.backends.choice import choose
from gitxact.backends.pg_registry import AgentRegistry, Owner


def _claim(repo: Path, agent: str, owner: Owner, ttl: float) -> None:
    """A claim as another host's gitxact would have made it (*owner* names that host)."""
    ws = Workspace(repo)
    registry = AgentRegistry.open(ws, choose(ws))
    try:
        registry.claim(agent, f"gitxact/{agent}", ttl=ttl, owner=owner)
    finally:
        registry.close()


def _dead_pid() -> int:
    argv = [sys.executable, "-c", "import os; print(os.getpid())"]
    gone = subprocess.run(argv, capture_output=True, text=True, check=True)
    return int(gone.stdout)


def test_two_hosts_never_lease_one_agent(pg_repo: Path, tmp_path: Path, postgres_server: PostgresServer) -> None:
    second = second_host(pg_repo, tmp_path, postgres_server)
    host_a, host_b = {"GITXACT_TEST_HOST": "host-a"}, {"GITXACT_TEST_HOST": "host-b"}
    with owner_process() as owner_a, owner_process() as owner_b:
        first = gitxact("worktree", "acquire", "a", "--json", "--owner-pid", str(owner_a.pid), cwd=pg_repo, env=host_a)
        assert first.returncode == 0, first.stderr
        token = json.loads(first.stdout)["token"]
        taken = gitxact("worktree", "acquire", "a", "--owner-pid", str(owner_b.pid), cwd=second, env=host_b)
        assert_clean_error(taken, 3)
        assert "host-a" in taken.stderr
        assert not (tmp_path / "second.worktrees" / "a").exists(), "nothing made on the refused host"
        fleet = json.loads(gitxact("worktree", "list", "--all-hosts", "--json", cwd=second, env=host_b).stdout)
        assert [(c["agent"], c["host"], c["pid"]) for c in fleet["claims"]] == [("a", "host-a", owner_a.pid)]
        # A renew on host a keeps the claim; the release ends it, and host b may lease a.
        assert gitxact("worktree", "renew", "a", "--token", token, cwd=pg_repo, env=host_a).returncode == 0
        assert gitxact("worktree", "release", "a", "--token", token, cwd=pg_repo, env=host_a).returncode == 0
        again = gitxact("worktree", "acquire", "a", "--json", "--owner-pid", str(owner_b.pid), cwd=second, env=host_b)
        assert again.returncode == 0, again.stderr
        fleet = json.loads(gitxact("worktree", "list", "--all-hosts", "--json", cwd=pg_repo, env=host_a).stdout)
        assert [(c["agent"], c["host"]) for c in fleet["claims"]] == [("a", "host-b")]


def test_all_hosts_needs_the_database(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    assert_clean_error(gitxact("worktree", "list", "--all-hosts", cwd=repo), 2)


def test_status_shows_the_fleets_holders_waiters_and_claims(
    pg_repo: Path, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    second = second_host(pg_repo, tmp_path, postgres_server)
    host_b = {"GITXACT_TEST_HOST": "host-b"}
    holder = start_named_holder(pg_repo, tmp_path / "held", "exclusive", "host-a")
    waiter = start_named_holder(second, tmp_path / "waits", "shared", "host-b", agent="reviewer", wait=False)
    try:
        with owner_process() as owner:
            acquired = gitxact(
                "worktree",
                "acquire",
                "a",
                "--owner-pid",
                str(owner.pid),
                cwd=pg_repo,
                env={"GITXACT_TEST_HOST": "host-a"},
            )
            assert acquired.returncode == 0, acquired.stderr
            _claim(pg_repo, "gone", Owner(pid=4242, host="host-c", start=None), ttl=0)  # expired at once
            deadline = time.monotonic() + 60
            while True:
                shown = gitxact("status", "--json", cwd=second, env=host_b)
                assert shown.returncode == 0, shown.stderr
                db = json.loads(shown.stdout)["database"]
                if db["locks"] and db["locks"][0]["waiters"]:
                    break
                assert waiter.poll() is None, Path(f"{tmp_path / 'waits'}.log").read_text()
                assert time.monotonic() < deadline, f"the waiter never showed: {db}"
                time.sleep(0.05)
            assert (db["reachable"], db["error"], db["schema_version"]) == (True, None, schema.LATEST)
            assert db["namespace"] == json.loads((second / ".git/gitxact/backend.json").read_text())["namespace"]
            [lock] = db["locks"]
            [held] = lock["holders"]
            [waits] = lock["waiters"]
            assert (lock["name"], held["host"], held["pid"], held["agent"], held["mode"]) == (
                "land",
                "host-a",
                holder.pid,
                "lander",
                "exclusive",
            )
            assert (waits["host"], waits["pid"], waits["agent"], waits["mode"], waits["state"]) == (
                "host-b",
                waiter.pid,
                "reviewer",
                "shared",
                "waiting",
            )
            claims = db["claims"]
            assert claims["total"] == 2
            assert claims["hosts"] == [
                {"host": "host-a", "claims": 1, "expired": 0},
                {"host": "host-c", "claims": 1, "expired": 1},
            ]
            assert [(e["agent"], e["host"], e["pid"]) for e in claims["expired"]] == [("gone", "host-c", 4242)]
            text = gitxact("status", cwd=second, env=host_b).stdout
            assert "namespace " + db["namespace"] + "): reachable" in text
            assert f"pid {holder.pid} on host-a (lander)" in text
            assert f"pid {waiter.pid} on host-b (reviewer)" in text
            assert "2 claimed: host-a 1, host-c 1 (1 expired)" in text
            assert "expired: gone (branch gitxact/gone) of pid 4242 on host-c" in text
        # The holder killed: the waiter holds, and the dead holder is never shown.
        kill_group(holder)
        deadline = time.monotonic() + 60
        while True:
            [lock] = json.loads(gitxact("status", "--json", cwd=pg_repo).stdout)["database"]["locks"]
            if not lock["waiters"]:
                break
            assert time.monotonic() < deadline, f"the waiter never got the lock: {lock}"
            time.sleep(0.05)
        assert [(h["pid"], h["state"]) for h in lock["holders"]] == [(waiter.pid, "holding")]
    finally:
        kill_group(holder)
        kill_group(waiter)


def test_reap_ends_dead_claims_of_any_host_and_never_a_live_one(
    pg_repo: Path, tmp_path: Path, postgres_server: PostgresServer
) -> None:
    second = second_host(pg_repo, tmp_path, postgres_server)
    host_a, host_b = {"GITXACT_TEST_HOST": "host-a"}, {"GITXACT_TEST_HOST": "host-b"}
    with owner_process() as live, owner_process() as doomed:
        for agent, owner in (("a", live), ("b", doomed), ("f", live)):
            proc = gitxact("worktree", "acquire", agent, "--owner-pid", str(owner.pid), cwd=pg_repo, env=host_a)
            assert proc.returncode == 0, proc.stderr
        shutil.rmtree(tmp_path / "repo.worktrees" / "f")  # deleted by hand: reap forgets the lease, owner alive
        doomed.kill()
        doomed.wait()
        _claim(pg_repo, "c", Owner(pid=4242, host="host-c", start=None), ttl=0)  # expired: any host ends it
        _claim(pg_repo, "d", Owner(pid=_dead_pid(), host="host-b", start=None), ttl=3600)  # dead on host b
        # Another host's owner cannot be checked from here: unexpired, it is kept, dead pid or not.
        _claim(pg_repo, "e", Owner(pid=_dead_pid(), host="host-c", start=None), ttl=3600)

        def claimed() -> set[str]:
            doc = json.loads(gitxact("worktree", "list", "--all-hosts", "--json", cwd=second, env=host_b).stdout)
            return {c["agent"] for c in doc["claims"]}

        preview = json.loads(gitxact("worktree", "reap", "--dry-run", "--json", cwd=second, env=host_b).stdout)
        assert sorted(c["agent"] for c in preview["claims_ended"]) == ["c", "d"]
        assert claimed() == {"a", "b", "c", "d", "e", "f"}, "a dry run ends nothing"
        proc = gitxact("worktree", "reap", "--json", cwd=second, env=host_b)
        assert proc.returncode == 0, proc.stderr
        ended = {c["agent"]: c for c in json.loads(proc.stdout)["claims_ended"]}
        assert sorted(ended) == ["c", "d"]
        assert ended["c"]["host"] == "host-c"
        assert "no heartbeat" in ended["c"]["reason"]
        assert "is gone" in ended["d"]["reason"]
        assert claimed() == {"a", "b", "e", "f"}, "host a's claims are host a's to end (b's owner died there)"
        # On host a: the dead owner's lease and its claim end together; the live one stays.
        text = gitxact("worktree", "reap", cwd=pg_repo, env=host_a)
        assert text.returncode == 0, text.stderr
        assert "ended claim: b (branch gitxact/b)" in text.stdout
        assert "ended claim: f (branch gitxact/f)" in text.stdout
        assert "its lease on this host was ended by this reap" in text.stdout
        assert claimed() == {"a", "e"}
        assert json.loads(gitxact("worktree", "list", "--json", cwd=pg_repo).stdout)["leases"][0]["agent"] == "a"
        assert "nothing to reap" in gitxact("worktree", "reap", cwd=pg_repo, env=host_a).stdout


def test_a_release_whose_claim_is_gone_ends_the_local_lease_and_says_so(pg_repo: Path) -> None:
    """Issue 25: the claim ended elsewhere (expired, then reaped by another host): the
    release ends the local lease, touches nothing in the registry, and says so (--json too)."""
    host_a = {"GITXACT_TEST_HOST": "host-a"}
    with owner_process() as owner:
        got = gitxact("worktree", "acquire", "a", "--json", "--owner-pid", str(owner.pid), cwd=pg_repo, env=host_a)
        assert got.returncode == 0, got.stderr
        token = json.loads(got.stdout)["token"]
        ws = Workspace(pg_repo)
        registry = AgentRegistry.open(ws, choose(ws))
        try:
            [claim] = registry.list()
            assert registry.end(claim)  # what another host's reap does once it expired
        finally:
            registry.close()
        released = gitxact("worktree", "release", "a", "--token", token, "--json", cwd=pg_repo, env=host_a)
        assert released.returncode == 0, released.stderr
        doc = json.loads(released.stdout)
        assert doc["worktree_removed"]
        assert doc["claim_left"].startswith("not this lease's any more, left as it is (it has ended"), doc
        assert json.loads(gitxact("worktree", "list", "--json", cwd=pg_repo).stdout)["leases"] == []
