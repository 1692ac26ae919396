"""The documents the worktree features return (and ``--json`` prints).

None of them carries a token hash, and only :class:`AcquireDoc` ever carries a token:
the one moment it is handed to the agent that asked for it.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from gitxact.core.documents import Document


class EndDoc(BaseModel):
    """What ending one lease did (release, reap, repair)."""

    agent: str
    path: str
    branch: str
    action: str
    reason: str
    snapshot_ref: str | None = None
    #: A transaction left open in the worktree, rolled back when the lease ended.
    transaction: str | None = None
    #: An index.lock a killed git left in the worktree, removed first (provably orphaned).
    stale_lock_removed: str | None = None
    worktree_removed: bool = False
    folder_left: bool = False
    branch_deleted: bool = False
    #: Why the branch was deleted: the integration rule that matched (``landed on main``, ...).
    branch_integrated: str | None = None
    branch_kept_reason: str | None = None
    #: PostgreSQL: why the fleet's claim did not end with the lease (it was not its own any
    #: more: expired while this host was cut off, and taken over or reaped elsewhere).
    claim_left: str | None = None
    error: str | None = None


class AcquireDoc(Document):
    agent: str
    path: str
    branch: str
    base: str
    base_commit: str | None
    #: The secret, returned once; ``None`` when an existing lease is returned to a
    #: caller that did not present its token.
    token: str | None
    #: True when the agent already held this live lease (idempotent acquire).
    existing: bool
    #: True when the branch was created for this lease, False when an existing one was checked out.
    branch_created: bool
    worktree_id: str | None
    owner_pid: int
    owner_host: str
    created: float
    heartbeat: float
    ttl: float
    #: A dead or expired earlier lease of the same agent that was ended first.
    replaced: EndDoc | None = None
    #: The agent's branch was left by an earlier lease: its commits not on the base, and
    #: the base's not on it, when it was found (``None``: the branch was new).
    branch_ahead: int | None = None
    branch_behind: int | None = None
    #: ``resume`` (checked out as it was) or ``fresh`` (started again from the base).
    reused: str | None = None
    #: With ``fresh``: the branch that keeps the old tip's commits.
    kept_branch: str | None = None
    #: Started again from the base with no flag because it was integrated: the rule that
    #: matched (``landed on main``, ``merged into main``, ...).
    branch_integrated: str | None = None
    #: Ignored files named by ``.worktreeinclude``, copied from the main worktree.
    included: list[str] = Field(default_factory=list)
    #: Those not copied: the destination, or a folder on its way, is a symbolic link in the
    #: new worktree (the checkout brought it), and nothing is written through one.
    include_skipped: list[str] = Field(default_factory=list)
    #: Folders a ``link FOLDER/`` line named, linked to the main worktree's instead of copied.
    include_linked: list[str] = Field(default_factory=list)
    #: How many of ``included`` share their bytes with the original (reflinks: XFS, btrfs).
    include_reflinked: int = 0
    #: The folders a sparse lease checks out (cone mode: ``--sparse``, ``lease.sparse``); empty: all.
    sparse: list[str] = Field(default_factory=list)
    #: Loopback ports allocated to the lease (``.gitxact.toml``'s ``lease.ports``).
    ports: list[int] = Field(default_factory=list)
    #: The lease's variables (GITXACT_AGENT, _BRANCH, _WORKTREE, _PORT, _PORTS), as setup saw them.
    env: dict[str, str] = Field(default_factory=dict)
    #: The log of the setup commands (``None``: there were none, or the lease existed).
    setup_log: str | None = None
    #: Why setup failed, when ``--keep-failed`` kept the lease anyway.
    setup_failed: str | None = None


class ReleaseDoc(EndDoc, Document):
    #: The log of the teardown commands, run before the files went (``None``: there were none).
    teardown_log: str | None = None
    #: Why teardown failed or did not run; the release went on (the work was saved all the same).
    teardown_error: str | None = None


class RenewDoc(Document):
    agent: str
    heartbeat: float
    ttl: float
    expires: float


class ClaimEndDoc(BaseModel):
    """A claim of the fleet's agent registry that reap ended (PostgreSQL backend): expired on
    any host, or this host's with a dead owner or a lease this reap ended."""

    agent: str
    branch: str
    host: str
    pid: int
    reason: str


class ReapDoc(Document):
    dry_run: bool
    ended: list[EndDoc] = Field(default_factory=list)
    #: Registry claims ended (or, with ``dry_run``, that would be); empty on the file backend.
    claims_ended: list[ClaimEndDoc] = Field(default_factory=list)
    #: Live leases left alone, agent -> why.
    kept: dict[str, str] = Field(default_factory=dict)
    #: Leased worktrees someone had unlocked, locked again.
    relocked: list[str] = Field(default_factory=list)
    #: Entries of gitxact's trash (released worktrees' files) deleted: their leases had ended.
    trash_emptied: list[str] = Field(default_factory=list)
    errors: int = 0


class ClaimInfo(BaseModel):
    """One host's claim on an agent name and branch (PostgreSQL backend)."""

    agent: str
    branch: str
    host: str
    pid: int
    path: str | None
    heartbeat: float
    ttl: float
    expired: bool
    ports: list[int] = []  # the lease's loopback ports, on its claim's host


class FleetDoc(Document):
    """``worktree list --all-hosts``: every host's claims, oldest first."""

    claims: list[ClaimInfo] = Field(default_factory=list)
