"""Which backend this repository coordinates through, and under which namespace.

Chosen by ``GITXACT_BACKEND``, else git config ``gitxact.backend``, else the files of
this host. Two stores at once would be split brain (each host holding what another
holds), so a choice is never changed silently:

* the environment and git config must agree when both are set;
* the first time a repository is opened on PostgreSQL, a marker
  (``<common-dir>/gitxact/backend.json``) says so, and from then on a process of that
  clone that would use the files (an agent started without ``GITXACT_BACKEND``, say) is
  refused instead; ``gitxact init --backend files`` is the one way back;
* an unreachable server is exit 75, never a fall-back to files.

The namespace (one database serves many projects) is the project's root commit plus
``gitxact.namespace`` (default ``default``): clones of one project share it, unrelated
projects never do, and one project can keep apart namespaces (staging, say).
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from gitxact.errors import RefusedError, UsageError
from gitxact.util.files import ensure_private_dir, read_no_follow, write_atomic
from gitxact.util.names import validate_name
from gitxact.util.value import Value

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

BACKEND_ENV = "GITXACT_BACKEND"
FILES = "files"
POSTGRESQL = "postgresql"
MARKER = "backend.json"
DEFAULT_NAMESPACE = "default"
_URL_PREFIXES = ("postgresql://", "postgres://")


class Choice(Value):
    """A backend as configured: ``kind`` files or postgresql; ``dsn`` a URL, or empty for
    the libpq environment (``PGHOST``, ``PGUSER``...); ``source`` says who chose it."""

    __slots__ = ("dsn", "kind", "source")

    def __init__(self, kind: str, dsn: str = "", source: str = "default") -> None:
        self.kind = kind
        self.dsn = dsn
        self.source = source

    def describe(self) -> str:
        if self.kind == FILES:
            return FILES
        return redact(self.dsn) if self.dsn else "postgresql (from the PG* environment variables)"


class Namespace(Value):
    """A project in a shared database: ``ident`` = ``<name>@<root commit>``."""

    __slots__ = ("ident", "name", "root")

    def __init__(self, name: str, root: str) -> None:
        self.name = name
        self.root = root
        self.ident = f"{name}@{root}"


def parse_backend(value: str, source: str) -> Choice:
    """``files``, ``postgresql`` (libpq's environment) or a ``postgresql://`` URL; else exit 2."""
    text = value.strip()
    if text.lower() in (FILES, "file"):
        return Choice(FILES, source=source)
    if text.lower() in (POSTGRESQL, "postgres"):
        return Choice(POSTGRESQL, "", source)
    if text.lower().startswith(_URL_PREFIXES):
        return Choice(POSTGRESQL, text, source)
    raise UsageError(
        f"{source}={redact(value)!r} names no backend",
        hint="use `files`, `postgresql` (libpq's PG* variables) or a URL postgresql://user@host:5432/db",
    )


def configured(repo: Repo) -> Choice:
    """What the environment and git config ask for; exit 2 when they disagree."""
    from_env = os.environ.get(BACKEND_ENV, "").strip()
    from_config = (repo.settings.backend or "").strip()
    env_choice = parse_backend(from_env, BACKEND_ENV) if from_env else None
    config_choice = parse_backend(from_config, "git config gitxact.backend") if from_config else None
    if env_choice and config_choice and (env_choice.kind, env_choice.dsn) != (config_choice.kind, config_choice.dsn):
        raise UsageError(
            f"{BACKEND_ENV}={env_choice.describe()} and git config gitxact.backend={config_choice.describe()} "
            "disagree: two backends at once would be split brain",
            hint=f"unset {BACKEND_ENV}, or change the config (`gitxact init --backend ...`)",
        )
    return env_choice or config_choice or Choice(FILES)


def choose(repo: Repo) -> Choice:
    """The backend to use now; on files, refused (exit 3) if this clone is marked as on PostgreSQL."""
    choice = configured(repo)
    if choice.kind == FILES:
        marker = read_marker(repo)
        if marker is not None:
            raise RefusedError(
                f"this repository coordinates through PostgreSQL ({marker.get('backend', '?')}, namespace "
                f"{marker.get('namespace', '?')}), but this process would use the files of this host",
                hint=f"set {BACKEND_ENV} or git config gitxact.backend as the other processes do; "
                "`gitxact init --backend files` moves this clone back to files for good",
            )
    return choice


def namespace_name(repo: Repo) -> str:
    return validate_name(repo.settings.namespace or DEFAULT_NAMESPACE, "namespace (git config gitxact.namespace)")


def project_root(repo: Repo) -> str:
    """The oldest root commit of HEAD: the same in every clone of the project."""
    result = repo.git(["rev-list", "--max-parents=0", "HEAD"], check=False, read_only=True)
    roots = result.lines()
    if result.returncode != 0 or not roots:
        raise UsageError(
            "the PostgreSQL backend names the project by its root commit, and HEAD has no commit yet",
            hint="make the first commit, then run gitxact again",
        )
    return min(roots)


def marker_path(repo: Repo) -> str:
    return os.path.join(repo.state_dir, MARKER)


def read_marker(repo: Repo) -> dict[str, object] | None:
    try:
        data = json.loads(read_no_follow(marker_path(repo), limit=64 * 1024))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"backend": "unreadable marker", "namespace": "?"}
    return data if isinstance(data, dict) else {"backend": "unreadable marker", "namespace": "?"}


def namespace(repo: Repo) -> Namespace:
    """This clone's namespace. The root commit comes from the marker when there is one:
    finding it walks the whole history, which a tracker increment should not pay for."""
    marker = read_marker(repo)
    root = marker.get("root") if marker else None
    if not isinstance(root, str) or len(root) not in (40, 64):
        root = project_root(repo)
    return Namespace(namespace_name(repo), root)


def mark(repo: Repo, choice: Choice, ns: Namespace) -> None:
    """Record that this clone coordinates through *choice* (once the server has answered).

    From then on the files of this clone are refused (see the module's docstring).
    """
    wanted = {"kind": POSTGRESQL, "backend": choice.describe(), "namespace": ns.ident, "root": ns.root}
    marker = read_marker(repo)
    if marker is not None and all(marker.get(k) == v for k, v in wanted.items()):
        return
    from pathlib import Path

    mode = ensure_private_dir(repo.state_dir)
    write_atomic(Path(marker_path(repo)), json.dumps({**wanted, "since": time.time()}, indent=1).encode(), mode=mode)


def forget_marker(repo: Repo) -> bool:
    try:
        os.unlink(marker_path(repo))
    except FileNotFoundError:
        return False
    return True


def redact(dsn: str) -> str:
    """*dsn* without its password, for messages, markers and ``--json``."""
    from urllib.parse import parse_qsl, urlencode, urlsplit

    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://(unparsable)"
    userinfo, at, hostinfo = parts.netloc.rpartition("@")
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hostinfo}" if at and ":" in userinfo else parts.netloc
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="/*") if pairs else parts.query
    if netloc == parts.netloc and query == urlencode(pairs, safe="/"):
        return dsn  # nothing secret: as written
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{shown}?{query}" if query else shown
