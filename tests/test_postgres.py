"""Choosing PostgreSQL (issue 17): init, the schema and its version, doctor, and never a silent fall-back.

Every test talks to the real server of the ``postgres_server`` fixture.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from support.proc import assert_clean_error, git, gitxact

from fixtures.postgres import PostgresServer
from gitxact.backends import schema

DEAD = "postgresql:///postgres?host=/nonexistent/gitxact-test&user=nobody"


def _db(server: PostgresServer, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(f"host={server.socket_dir} user=gitxact dbname={dbname}", autocommit=True)


def test_init_backend_creates_the_schema_and_names_the_project(repo: Path, postgres_server: PostgresServer) -> None:
    git("config", "gitxact.namespace", "init-test", cwd=repo)
    proc = gitxact("init", "--backend", postgres_server.dsn, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(proc.stdout)["settings"]
    root = git("rev-list", "--max-parents=0", "HEAD", cwd=repo).strip()
    assert settings["namespace"] == f"init-test@{root}"
    assert settings["schema_version"] == schema.LATEST
    assert settings["gitxact.backend"] == postgres_server.dsn
    assert git("config", "--local", "gitxact.backend", cwd=repo).strip() == postgres_server.dsn
    with _db(postgres_server) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM gitxact.schema_version ORDER BY version")]
        assert versions == [m[0] for m in schema.MIGRATIONS]
        row = conn.execute("SELECT name, root FROM gitxact.namespaces WHERE ident = %s", (settings["namespace"],))
        assert row.fetchone() == ("init-test", root)
    # Again: nothing to migrate, the same namespace; the human output names both.
    again = gitxact("init", "--backend", postgres_server.dsn, cwd=repo)
    assert again.returncode == 0, again.stderr
    assert f"namespace init-test@{root}, schema version {schema.LATEST})" in again.stdout


def test_a_password_never_shows(repo: Path, postgres_server: PostgresServer) -> None:
    url = postgres_server.dsn.replace("postgresql:///", "postgresql://gitxact:s3cret@/")
    proc = gitxact("init", "--backend", url, "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "s3cret" not in proc.stdout + proc.stderr
    assert "gitxact:***@" in json.loads(proc.stdout)["settings"]["gitxact.backend"]
    marker = (repo / ".git" / "gitxact" / "backend.json").read_text()
    assert "s3cret" not in marker


def test_unreachable_database_is_exit_75_and_changes_nothing(repo: Path) -> None:
    proc = gitxact("init", "--backend", DEAD, cwd=repo)
    assert_clean_error(proc, 75)
    assert "cannot reach PostgreSQL" in proc.stderr
    assert "never falls back" in proc.stderr
    assert git("config", "--local", "gitxact.backend", cwd=repo, check=False) == ""
    assert not (repo / ".git" / "gitxact" / "backend.json").exists()
    # Chosen by the environment: the tracker fails the same way, and no file tracker appears.
    dead = {"GITXACT_BACKEND": DEAD}
    proc = gitxact("tracker", "incr", "n", cwd=repo, env=dead)
    assert_clean_error(proc, 75)
    assert not (repo / ".git" / "gitxact" / "state" / "tracker.json").exists()
    # Every command that needs the database: exit 75 naming it, nothing done.
    for argv in (["lock", "--name", "land", "--", "true"], ["worktree", "acquire", "a"], ["worktree", "reap"]):
        proc = gitxact(*argv, cwd=repo, env=dead)
        assert_clean_error(proc, 75)
        assert "cannot reach PostgreSQL" in proc.stderr, argv
    assert not (repo.parent / "repo.worktrees" / "a").exists()
    assert git("branch", "--list", "gitxact/*", cwd=repo) == ""
    # Status is where one looks to find out why: it says so, and shows this host's part (exit 0).
    assert json.loads(gitxact("status", "--json", cwd=repo).stdout)["database"] is None, "files: no database part"
    proc = gitxact("status", "--json", cwd=repo, env=dead)
    assert proc.returncode == 0, proc.stderr
    db = json.loads(proc.stdout)["database"]
    assert (db["reachable"], db["locks"], db["claims"]) == (False, [], None)
    assert "cannot reach PostgreSQL" in db["error"]
    assert "UNREACHABLE" in gitxact("status", cwd=repo, env=dead).stdout


def test_two_backends_at_once_are_refused(pg_repo: Path) -> None:
    # The environment disagrees with git config: exit 2, nothing done.
    proc = gitxact("tracker", "incr", "n", cwd=pg_repo, env={"GITXACT_BACKEND": "files"})
    assert_clean_error(proc, 2)
    assert "split brain" in proc.stderr
    # The config was removed by hand: the clone is still marked as on PostgreSQL.
    git("config", "--unset", "gitxact.backend", cwd=pg_repo)
    proc = gitxact("tracker", "incr", "n", cwd=pg_repo)
    assert_clean_error(proc, 3)
    assert "coordinates through PostgreSQL" in proc.stderr
    assert not (pg_repo / ".git" / "gitxact" / "state" / "tracker.json").exists()
    # The one way back to files.
    assert gitxact("init", "--backend", "files", cwd=pg_repo).returncode == 0
    proc = gitxact("tracker", "incr", "n", cwd=pg_repo)
    assert (proc.returncode, proc.stdout.strip()) == (0, "1")


def test_libpq_environment_selects_the_server(repo: Path, postgres_server: PostgresServer) -> None:
    git("config", "gitxact.namespace", "libpq-env", cwd=repo)
    env = {"GITXACT_BACKEND": "postgresql", "PGHOST": postgres_server.socket_dir, "PGUSER": "gitxact"}
    env["PGDATABASE"] = "postgres"
    first = gitxact("tracker", "incr", "n", "5", cwd=repo, env=env)
    assert first.stdout.strip() == "5", first.stderr
    assert gitxact("tracker", "incr", "n", cwd=repo, env=env).stdout.strip() == "6"
    assert not (repo / ".git" / "gitxact" / "state" / "tracker.json").exists()


def test_file_backend_never_imports_psycopg(repo: Path, pg_repo: Path) -> None:
    def imported(cwd: Path) -> set[str]:
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "gitxact", "tracker", "incr", "n"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        return {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}

    files_repo = repo.parent / "files"
    git("clone", "-q", str(pg_repo), str(files_repo), cwd=repo.parent)
    assert gitxact("init", cwd=files_repo).returncode == 0
    assert "psycopg" not in imported(files_repo)
    on_postgres = imported(pg_repo)
    assert "psycopg" in on_postgres
    assert "pydantic" not in on_postgres


def test_doctor_checks_the_database(pg_repo: Path, postgres_server: PostgresServer) -> None:
    assert json.loads(gitxact("doctor", "--json", cwd=pg_repo).stdout)["findings"] == []
    ident = json.loads((pg_repo / ".git" / "gitxact" / "backend.json").read_text())["namespace"]
    with _db(postgres_server) as conn:
        conn.execute("DELETE FROM gitxact.namespaces WHERE ident = %s", (ident,))
        conn.execute(
            "INSERT INTO gitxact.lock_holders (ns, name, session, mode, host, pid, agent, command, since)"
            " VALUES (%s, 'land', 2147483000, 'exclusive', 'gone-host', 4242, 'a1', 'x', 0)",
            (ident,),
        )
    proc = gitxact("doctor", "--json", cwd=pg_repo)
    assert proc.returncode == 1
    problems = [f["problem"] for f in json.loads(proc.stdout)["findings"] if f["check"] == "backend"]
    assert len(problems) == 2, problems
    assert f"namespace {ident} is not registered" in problems[0]
    assert "pid 4242 on gone-host" in problems[1]
    assert gitxact("doctor", "--fix", cwd=pg_repo).returncode == 0
    assert gitxact("doctor", cwd=pg_repo).returncode == 0
    # Unreachable: a finding (exit 1) that says so, beside whatever else doctor checks.
    git("config", "gitxact.backend", DEAD, cwd=pg_repo)
    proc = gitxact("doctor", cwd=pg_repo)
    assert proc.returncode == 1
    assert "cannot reach PostgreSQL" in proc.stdout + proc.stderr


def test_schema_is_migrated_once_and_a_newer_one_refused(repo: Path, postgres_server: PostgresServer) -> None:
    with _db(postgres_server) as conn:
        conn.execute("DROP DATABASE IF EXISTS schema_test")
        conn.execute("CREATE DATABASE schema_test")
    url = postgres_server.dsn.replace("/postgres?", "/schema_test?")
    with _db(postgres_server, "schema_test") as conn:
        assert schema.migrate(conn) == [m[0] for m in schema.MIGRATIONS]
        assert schema.migrate(conn) == []
        conn.execute("INSERT INTO gitxact.schema_version VALUES (%s, 0, 'future', 'a later gitxact')", (99,))
    proc = gitxact("tracker", "incr", "n", cwd=repo, env={"GITXACT_BACKEND": url})
    assert_clean_error(proc, 1)
    assert "newer than this gitxact knows" in proc.stderr
    git("config", "gitxact.backend", url, cwd=repo)
    doctor = gitxact("doctor", cwd=repo)
    assert doctor.returncode == 1
    assert "newer than this gitxact" in doctor.stdout + doctor.stderr


@pytest.mark.parametrize("value", ["mysql://x", "postgresql-ish", ""])
def test_a_bad_backend_value_is_exit_2(repo: Path, value: str) -> None:
    proc = gitxact("init", "--backend", value, cwd=repo)
    assert_clean_error(proc, 2)
