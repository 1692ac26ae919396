"""A private PostgreSQL server for the tests: initdb + pg_ctl in a temporary folder.

It listens on a Unix socket in that folder only (no TCP port, so parallel runs on one
machine never meet), trusts local connections, and runs as an unprivileged user when
the tests run as root (PostgreSQL refuses root; CI runs as root). Nothing is mocked:
the tests talk to a real server through psycopg, as users will.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

USER = "gitxact"  # the database superuser initdb creates


def find_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: PATH first, then Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(versions[-1]).parent if versions else None


def _runner() -> tuple[list[str], str | None]:
    """The command prefix that drops root (``runuser -u USER --``) and that user, or nothing."""
    if os.getuid() != 0:
        return [], None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"], name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


class PostgresServer:
    """One running cluster; ``dsn`` is what ``gitxact init --backend`` takes."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="gxpg-"))  # short: a socket path has ~100 bytes
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._prefix, user = _runner()
        if user is not None:
            info = pwd.getpwnam(user)
            os.chown(self.folder, info.pw_uid, info.pw_gid)

    @property
    def socket_dir(self) -> str:
        return str(self.folder)

    @property
    def dsn(self) -> str:
        return f"postgresql:///postgres?host={self.folder}&user={USER}"

    def _run(self, *argv: str) -> None:
        proc = subprocess.run(
            [*self._prefix, *argv],
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "LC_ALL": "C", "PGTZ": "UTC"},
        )
        if proc.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stdout}{proc.stderr}\n{log}")

    def init(self) -> None:
        initdb = str(self.bin_dir / "initdb")
        self._run(initdb, "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync")

    def start(self) -> None:
        options = (
            f"-c listen_addresses='' -c unix_socket_directories={self.folder} -c fsync=off"
            " -c full_page_writes=off -c max_connections=200 -c shared_buffers=16MB"
        )
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop (fast: sessions are ended, in-flight statements rolled back) and start again."""
        self.stop("fast")
        self.start()

    def remove(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)


def start_server() -> PostgresServer:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("initdb")
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
    except BaseException:
        server.remove()
        raise
    return server
