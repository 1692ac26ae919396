"""Leases across hosts (issue 17): with PostgreSQL, acquire claims the agent in the fleet's
registry, release ends the claim, `worktree list --all-hosts` shows every host's.

Two hosts are two clones of one project in one namespace, their processes given other
host identities (``GITXACT_TEST_HOST``, test-only)."""

from __future__ import annotations

import json
from pathlib import Path

from support.proc import assert_clean_error, git, gitxact, owner_process

from fixtures.postgres import PostgresServer


def _second_host(first: Path, tmp_path: Path, server: PostgresServer) -> Path:
    second = tmp_path / "second"
    git("clone", "-q", str(first), str(second), cwd=tmp_path)
    git("config", "gitxact.namespace", git("config", "gitxact.namespace", cwd=first).strip(), cwd=second)
    assert gitxact("init", "--backend", server.dsn, cwd=second).returncode == 0
    return second


def test_two_hosts_never_lease_one_agent(pg_repo: Path, tmp_path: Path, postgres_server: PostgresServer) -> None:
    second = _second_host(pg_repo, tmp_path, postgres_server)
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
