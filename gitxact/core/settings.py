"""gitxact's settings: git config keys in the ``gitxact.`` section, with defaults.

Read with one ``git config --get-regexp`` call per command, so a setting can live in
the repository's config, the user's or the system's, exactly like git's own keys.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from gitxact.errors import UsageError
from gitxact.git import run as git
from gitxact.util.value import Value

#: Every key gitxact reads, its default and what it means (docs/configuration.md).
KEYS: dict[str, tuple[str, str]] = {
    "gitxact.lockTimeout": ("60", "seconds to wait for a lock before exit 75 (negative: wait forever)"),
    "gitxact.worktreeRoot": ("../<repo>.worktrees", "folder that holds agents' worktrees"),
    "gitxact.branchPrefix": ("gitxact/", "prefix of agents' branches"),
    "gitxact.leaseTtl": ("3600", "seconds a lease lives without a heartbeat before reap may end it"),
    "gitxact.savepointKeep": ("0", "seconds to keep a committed transaction's savepoint refs (audit/undo)"),
    "gitxact.checkTimeout": ("600", "default seconds a tdd --check command may run"),
    "gitxact.landParallel": ("1", "candidates a landing queue builds and checks at once (land --parallel)"),
    "gitxact.snapshotExpiry": (
        "never",
        "age (12h, 7d) after which gitxact gc drops snapshots no live lease or transaction holds",
    ),
    "gitxact.backend": ("files", "where agents coordinate: files (this host) or a postgresql:// URL (many hosts)"),
    "gitxact.namespace": ("default", "this project's name in a shared database (beside its root commit)"),
    "gitxact.leasePorts": ("0", "ports allocated to each lease; wins over .gitxact.toml's lease.ports"),
    "gitxact.leasePortRange": ("20000-29999", "where lease ports come from; wins over lease.port-range"),
    "gitxact.maxLeases": ("none", "leases the clone may hold at once; an acquire beyond them is refused (exit 3)"),
}


class Settings(Value):
    """The values of :data:`KEYS`; ``worktree_root`` as configured (the worktrees module resolves it)."""

    __slots__ = (
        "backend",
        "branch_prefix",
        "check_timeout",
        "land_parallel",
        "lease_port_range",
        "lease_ports",
        "lease_ttl",
        "lock_timeout",
        "max_leases",
        "namespace",
        "savepoint_keep",
        "worktree_root",
    )

    def __init__(
        self,
        *,
        lock_timeout: float = 60.0,
        worktree_root: str | None = None,
        branch_prefix: str = "gitxact/",
        lease_ttl: float = 3600.0,
        savepoint_keep: float = 0.0,
        check_timeout: float = 600.0,
        land_parallel: int = 1,
        backend: str | None = None,
        namespace: str | None = None,
        lease_ports: str | None = None,
        lease_port_range: str | None = None,
        max_leases: int | None = None,
    ) -> None:
        self.lock_timeout = lock_timeout
        self.worktree_root = worktree_root
        self.branch_prefix = branch_prefix
        self.lease_ttl = lease_ttl
        self.savepoint_keep = savepoint_keep
        self.check_timeout = check_timeout
        self.land_parallel = land_parallel
        # Kept as written: only gitxact.backends reads them, and only when a tracker or a
        # named lock is opened (gx never does).
        self.backend = backend
        self.namespace = namespace
        # As written too: gitxact.project.config checks them, with the rules of .gitxact.toml.
        self.lease_ports = lease_ports
        self.lease_port_range = lease_port_range
        #: ``None``: no limit.
        self.max_leases = max_leases


def _seconds(key: str, value: str, *, allow_negative: bool = False) -> float:
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"git config {key}={value!r} is not a number of seconds") from None
    if math.isnan(number) or (number < 0 and not allow_negative):
        raise UsageError(f"git config {key}={value!r} must be a non-negative number of seconds")
    return number


def _count(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"git config {key}={value!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"git config {key}={value!r} must be at least 1")
    return number


def load(cwd: Path) -> Settings:
    """Settings for the repository at *cwd*, validated (a bad value is exit 2 naming the key)."""
    values = dict(git.config_regexp(cwd, r"^gitxact\."))
    settings = Settings()
    if "gitxact.locktimeout" in values:
        settings.lock_timeout = _seconds("gitxact.lockTimeout", values["gitxact.locktimeout"], allow_negative=True)
    if "gitxact.leasettl" in values:
        settings.lease_ttl = _seconds("gitxact.leaseTtl", values["gitxact.leasettl"])
    if "gitxact.savepointkeep" in values:
        settings.savepoint_keep = _seconds("gitxact.savepointKeep", values["gitxact.savepointkeep"])
    if "gitxact.checktimeout" in values:
        settings.check_timeout = _seconds("gitxact.checkTimeout", values["gitxact.checktimeout"])
    if "gitxact.landparallel" in values:
        settings.land_parallel = _count("gitxact.landParallel", values["gitxact.landparallel"])
    if "gitxact.branchprefix" in values:
        prefix = values["gitxact.branchprefix"]
        if not prefix or not git.check_ref_format(f"refs/heads/{prefix}x"):
            raise UsageError(f"git config gitxact.branchPrefix={prefix!r} does not make valid branch names")
        settings.branch_prefix = prefix
    if "gitxact.worktreeroot" in values:
        raw = values["gitxact.worktreeroot"]
        if not raw.strip():
            raise UsageError("git config gitxact.worktreeRoot is empty")
        settings.worktree_root = raw
    if "gitxact.maxleases" in values:
        settings.max_leases = _count("gitxact.maxLeases", values["gitxact.maxleases"])
    settings.backend = values.get("gitxact.backend")
    settings.namespace = values.get("gitxact.namespace")
    settings.lease_ports = values.get("gitxact.leaseports")
    settings.lease_port_range = values.get("gitxact.leaseportrange")
    return settings


def resolve_worktree_root(settings: Settings, main_worktree: Path) -> Path:
    """Where agents' worktrees go: the configured root (relative to the main worktree)
    or, by default, ``<main>/../<repo>.worktrees`` beside the main worktree."""
    if settings.worktree_root is None:
        return main_worktree.parent / f"{main_worktree.name}.worktrees"
    root = Path(settings.worktree_root).expanduser()
    if not root.is_absolute():
        root = main_worktree / root
    return Path(os.path.normpath(root))
