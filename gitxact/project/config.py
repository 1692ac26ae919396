"""``.gitxact.toml``: how a project provisions each lease (setup, teardown, ports, include).

The file is committed at the worktree root and read with the standard library's
``tomllib``; only its ``[lease]`` table is defined. It is read from the commit a lease
is checked out at (:func:`committed`), never from the main worktree's files: what
runs in a new worktree is what that worktree's own checkout says, and an edit not yet
committed cannot slip in between ``gitxact trust`` and an acquire. A clone's git config
(``gitxact.leasePorts``, ``gitxact.leasePortRange``) wins over the file: the file is the
project's default, the clone's owner decides for their machine.

Any key this gitxact does not know, or a value of the wrong type, is a usage error
(exit 2) naming the file and the key: a misspelt ``setup`` silently ignored is an
agent's worktree silently unprovisioned.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gitxact.errors import UsageError

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.core.settings import Settings

CONFIG_FILE = ".gitxact.toml"
DEFAULT_PORT_RANGE = (20000, 29999)
#: More ports than any dev server set needs; a typo (``ports = 1000``) would drain the range.
MAX_PORTS = 64

_LEASE_KEYS = ("setup", "teardown", "ports", "port-range", "include", "sparse")


@dataclass(frozen=True)
class LeaseConfig:
    """The ``[lease]`` table, with the clone's overrides applied."""

    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()
    ports: int = 0
    port_range: tuple[int, int] = DEFAULT_PORT_RANGE
    #: More paths, as lines of ``.worktreeinclude`` (gitignore syntax).
    include: tuple[str, ...] = ()
    #: Default sparse folders (cone mode) of a lease made without ``--sparse``/``--no-sparse``.
    sparse: tuple[str, ...] = ()
    #: Where it was read (``<commit>:.gitxact.toml``), ``None`` when there is no file.
    source: str | None = None
    #: SHA-256 of the file's bytes: what ``gitxact trust`` records.
    sha256: str | None = None

    @property
    def has_commands(self) -> bool:
        """Whether it names commands to run, and so needs the clone's trust."""
        return bool(self.setup or self.teardown)


def parse(data: bytes, where: str) -> LeaseConfig:
    """The ``[lease]`` table of the file *data*, checked; *where* names it in errors."""
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}", hint="fix the file and commit it") from None
    unknown = sorted(set(document) - {"lease"})
    if unknown:
        raise UsageError(f"{where}: unknown table or key {unknown[0]!r}", hint="only [lease] is defined")
    table = document.get("lease", {})
    if not isinstance(table, dict):
        raise UsageError(f"{where}: 'lease' must be a table ([lease])")
    for key in table:
        if key not in _LEASE_KEYS:
            raise UsageError(f"{where}: unknown key 'lease.{key}'", hint=f"known keys: {', '.join(_LEASE_KEYS)}")
    config = LeaseConfig(
        setup=_strings(table, "setup", where),
        teardown=_strings(table, "teardown", where),
        include=_strings(table, "include", where),
        sparse=tuple(sparse_path(path, f"{where}: lease.sparse") for path in _strings(table, "sparse", where)),
        source=where,
        sha256=hashlib.sha256(data).hexdigest(),
    )
    if "ports" in table:
        config = replace(config, ports=port_count(table["ports"], f"{where}: lease.ports"))
    if "port-range" in table:
        config = replace(config, port_range=port_range(table["port-range"], f"{where}: lease.port-range"))
    return config


def port_count(value: Any, what: str) -> int:
    """How many ports a lease gets: an integer from 0 to :data:`MAX_PORTS`."""
    if type(value) is not int or not 0 <= value <= MAX_PORTS:
        raise UsageError(f"{what} = {value!r} must be a whole number from 0 to {MAX_PORTS}")
    return value


def port_range(value: Any, what: str) -> tuple[int, int]:
    """``"LOW-HIGH"`` (inclusive, within 1024-65535: below are the system's) as ``(low, high)``."""
    low_text, dash, high_text = value.partition("-") if isinstance(value, str) else ("", "", "")
    try:
        low, high = int(low_text), int(high_text)
    except ValueError:
        low = high = 0
    if not dash or not 1024 <= low <= high <= 65535:
        raise UsageError(f'{what} = {value!r} must be a range like "20000-29999" within 1024-65535')
    return low, high


def with_overrides(config: LeaseConfig, settings: Settings) -> LeaseConfig:
    """*config* with the clone's git config applied: ``gitxact.leasePorts`` and
    ``gitxact.leasePortRange`` win over the committed file."""
    if settings.lease_ports is not None:
        raw = settings.lease_ports.strip()  # git config values are text
        value: int | str = int(raw) if raw.isascii() and raw.isdigit() else settings.lease_ports
        config = replace(config, ports=port_count(value, "git config gitxact.leasePorts"))
    if settings.lease_port_range is not None:
        config = replace(config, port_range=port_range(settings.lease_port_range, "git config gitxact.leasePortRange"))
    return config


def read_committed(repo: Repo, commit: str) -> bytes | None:
    """The bytes of ``.gitxact.toml`` in *commit*, or ``None`` when it has none."""
    spec = f"{commit}:{CONFIG_FILE}"
    result = repo.git(["cat-file", "--batch"], cwd=repo.layout.common_dir, input=spec + "\n", read_only=True)
    header, _, rest = result.stdout.partition("\n")
    fields = header.split()
    if len(fields) != 3:
        return None
    if fields[1] != "blob":
        raise UsageError(f"{spec} is a {fields[1]}, not a file")
    # git's output was decoded with surrogateescape: encoding it back gives the exact bytes.
    return rest.encode("utf-8", "surrogateescape")[: int(fields[2])]


def committed(repo: Repo, commit: str) -> LeaseConfig:
    """The configuration a lease checked out at *commit* gets (the clone's overrides applied)."""
    data = read_committed(repo, commit)
    config = LeaseConfig() if data is None else parse(data, f"{commit[:12]}:{CONFIG_FILE}")
    return with_overrides(config, repo.settings)


def _strings(table: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise UsageError(
            f"{where}: lease.{key} must be a list of non-empty strings, not {value!r}",
            hint=f'e.g. {key} = ["make deps"]' if key in ("setup", "teardown") else None,
        )
    return tuple(value)


def sparse_path(path: str, what: str) -> str:
    """A sparse folder as ``git sparse-checkout set --cone`` takes it: relative to the
    worktree, without ``..``, on one line (they go to its ``--stdin``); *what* names it."""
    parts = path.strip("/").split("/")
    if not path.strip("/") or path.startswith("/") or ".." in parts or "\n" in path or "\0" in path:
        raise UsageError(f"{what} path {path!r} must be a folder relative to the worktree, without '..'")
    return path
