"""Putting a test repository on the PostgreSQL backend (the ``pg_repo`` and ``backend`` fixtures)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from fixtures.postgres import PostgresServer
from support.proc import git


def onto_postgres(repo: Path, server: PostgresServer, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Initialize *repo* on *server* in a namespace named after *name*.

    Test repositories share their root commit (pinned author and dates), so each test
    names its namespace (``gitxact.namespace``) after itself. libpq's own variables are
    cleared: the URL alone says where the server is.
    """
    from gitxact import Workspace
    from gitxact.backends.admin import select_backend

    for variable in list(os.environ):
        if variable.startswith("PG"):
            monkeypatch.delenv(variable)
    git("config", "gitxact.namespace", "t-" + hashlib.sha256(name.encode()).hexdigest()[:16], cwd=repo)
    ws = Workspace(repo)
    ws.init()
    select_backend(ws, server.dsn)
    return repo
