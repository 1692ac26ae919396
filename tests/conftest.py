"""Fixtures: every test in an isolated environment, real git repositories in tmp_path.

The helpers the tests call live in ``tests/support/``; data and worker programs the
tests share with ``scripts/`` live in the top-level ``fixtures/`` folder.

Every test runs with HOME and git's global config pointed into its own tmp folder and
a pinned author, so nothing reads or writes the developer's own setup, and commits
are reproducible.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.backends import onto_postgres
from support.proc import ROOT, owner_process

from fixtures.postgres import PostgresServer, start_server
from fixtures.repos import make_repo


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text("[user]\n\tname = Test\n\temail = test@example.com\n[init]\n\tdefaultBranch = main\n")
    for name in list(os.environ):
        if name.startswith(("GIT_", "GITXACT_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@example.com")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    before = sorted(p.name for p in home.iterdir())
    environ = dict(os.environ)
    yield home
    # In-process CLI calls (tests/test_hostile.py) adjust os.environ for themselves.
    os.environ.clear()
    os.environ.update(environ)
    after = sorted(p.name for p in home.iterdir())
    assert after == before, f"a test wrote into $HOME: {set(after) - set(before)}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit on main, in tmp_path/repo."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def inside(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """*repo*, initialized, as the current folder: for tests that call the CLI in-process."""
    from gitxact.cli.main import main

    monkeypatch.chdir(repo)
    assert main(["init"]) == 0
    return repo


@pytest.fixture
def owner() -> Iterator[int]:
    """A long-lived owner for the leases a test makes (so none is reapable meanwhile): its pid."""
    with owner_process() as proc:
        yield proc.pid


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the whole run (started once: initdb takes a second or two).

    Missing binaries fail the run under CI (``scripts/test`` installs Debian's
    ``postgresql`` package), and skip only on a developer's machine without them.
    """
    try:
        server = start_server()
    except FileNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL's initdb is not installed; scripts/test installs Debian's postgresql package")
        pytest.skip("PostgreSQL's initdb is not installed (scripts/test installs Debian's postgresql package)")
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_repo(
    repo: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Path:
    """*repo* initialized on the test server, in a namespace of its own.

    Test repositories share their root commit (pinned author and dates), so each test
    names its namespace (``gitxact.namespace``) after itself. libpq's own variables are
    cleared: the URL alone says where the server is.
    """
    return onto_postgres(repo, postgres_server, monkeypatch, request.node.nodeid)


@pytest.fixture(params=["files", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a behavioural test on both backends: on ``postgresql`` its ``repo`` is moved
    onto the test server first (``pytestmark = pytest.mark.usefixtures("backend")``)."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        onto_postgres(request.getfixturevalue("repo"), server, monkeypatch, request.node.nodeid)
    return str(request.param)


@pytest.fixture(params=["files", "postgresql"])
def backend_repo(request: pytest.FixtureRequest, repo: Path) -> Path:
    """*repo* on each coordination backend in turn (files, then the test server): the
    behavioural tests of the tracker, named locks and leases run on both."""
    if request.param == "files":
        from gitxact import Workspace

        Workspace(repo).init()
        return repo
    pg: Path = request.getfixturevalue("pg_repo")
    return pg


@pytest.fixture(params=["files", "postgresql"])
def two_clones(request: pytest.FixtureRequest, repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    """Where a holder and a contender run: on files, one repository (its locks are this
    host's); on PostgreSQL, two clones sharing one namespace, as two hosts would."""
    from support.fleet import second_host

    if request.param == "files":
        from gitxact import Workspace

        Workspace(repo).init()
        return repo, repo
    first: Path = request.getfixturevalue("pg_repo")
    return first, second_host(first, tmp_path, request.getfixturevalue("postgres_server"))
