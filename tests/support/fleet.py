"""Several hosts on one machine: clones of one project in one namespace of the test server,
their processes given other host identities (``GITXACT_TEST_HOST``, test-only)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from fixtures.postgres import PostgresServer
from support.proc import git, gitxact, kill_group, wait_for_file


def second_host(first: Path, tmp_path: Path, server: PostgresServer, name: str = "second") -> Path:
    """A clone of *first* on the same server and namespace: another host's checkout."""
    second = tmp_path / name
    git("clone", "-q", str(first), str(second), cwd=tmp_path)
    git("config", "gitxact.namespace", git("config", "gitxact.namespace", cwd=first).strip(), cwd=second)
    proc = gitxact("init", "--backend", server.dsn, cwd=second)
    assert proc.returncode == 0, proc.stderr
    return second


_HOLDER = textwrap.dedent(
    """
    import pathlib, sys, time
    from gitxact import Workspace
    from gitxact.backends.named import open_named_locks
    locks = open_named_locks(Workspace(sys.argv[1], agent=sys.argv[5]))
    with locks.hold(sys.argv[4], sys.argv[3], timeout=120):
        pathlib.Path(sys.argv[2]).touch()
        time.sleep(120)
    """
)


def start_named_holder(
    where: Path, ready: Path, mode: str, host: str, *, name: str = "land", agent: str = "lander", wait: bool = True
) -> subprocess.Popen[bytes]:
    """A process of "host" *host* taking named lock *name* (and holding it two minutes);
    with *wait*, returns once it holds it. Its errors go to ``<ready>.log``."""
    with open(f"{ready}.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(where), str(ready), mode, name, agent],
            cwd=where,
            env={**os.environ, "GITXACT_TEST_HOST": host},
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    if wait:
        try:
            wait_for_file(ready, "the holder to take the lock", proc)
        except AssertionError:
            kill_group(proc)
            raise AssertionError(Path(f"{ready}.log").read_text()) from None
    return proc
