"""The documents ``gitxact snapshots ...`` returns (and ``--json`` prints).

A snapshot is named by its ref; ``name`` is the ref without ``refs/gitxact/snapshots/``,
which is what people type. Times are Unix seconds, ages seconds, sizes bytes.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gitxact.core.documents import Document

#: Where a snapshot came from, read from its ref name:
#: ``released`` — uncommitted work a lease left when it ended (release, reap, recover);
#: ``savepoint`` — a transaction's savepoint (``<ns>/tx-.../<name>``);
#: ``undone`` — work a failed TDD check rolled back (``<ns>/undone/...``);
#: ``replaced`` — a worktree's work that ``snapshots restore --force`` replaced;
#: ``orphaned`` — savepoints ``doctor --fix`` found without a transaction.
Kind = Literal["released", "savepoint", "undone", "replaced", "orphaned"]


class SnapshotInfo(BaseModel):
    ref: str
    name: str
    kind: Kind
    #: The first part of the name: an agent, ``worktree@<id>`` or ``orphaned``.
    namespace: str
    #: The agent it belongs to (``None`` for worktree@ and orphaned namespaces).
    agent: str | None
    commit: str
    #: The commit HEAD was at when it was taken (``None``: an unborn branch).
    head: str | None
    created: float
    age: float
    #: The worktree it was taken in, when its commit message says.
    source: str | None
    message: str
    #: Why it may not be dropped now (a live lease, a transaction), or ``None``.
    protected: str | None = None


class SnapshotListDoc(Document):
    snapshots: list[SnapshotInfo] = Field(default_factory=list)
    count: int = 0


class FileChange(BaseModel):
    """One path, as ``git status --porcelain`` would have shown it when the snapshot was taken."""

    path: str
    #: Staged change against HEAD: ``M``, ``A``, ``D``, ``T`` or ``" "``.
    index: str
    #: Change in the worktree against the index: ``M``, ``A``, ``D``, ``T``, ``" "``, or ``?`` (untracked).
    worktree: str


class SnapshotShowDoc(Document):
    snapshot: SnapshotInfo
    index_commit: str
    files: list[FileChange] = Field(default_factory=list)
    #: Bytes on disk of the objects this snapshot adds to its HEAD (what dropping it lets gc free, at most).
    size: int


class BaseCommit(BaseModel):
    """A commit under the snapshot (its HEAD or that HEAD's history) the target's HEAD did not have."""

    commit: str
    subject: str
    #: What it is on the target now: itself (fast-forward), its cherry-pick, or ``None``
    #: (its change was already there, or it was left out: ``commits == "left-out"``).
    brought_as: str | None = None


class RestoreDoc(Document):
    snapshot: str
    into: str
    #: ``exact``: HEAD is where the snapshot was taken, files and index are exactly the snapshot;
    #: ``applied``: HEAD moved since, so the snapshot's changes were merged onto it.
    method: Literal["exact", "applied"]
    #: HEAD the work was restored onto (after the commits were brought, if they were).
    head: str | None
    snapshot_head: str | None
    #: The snapshot's own commits: ``present`` (HEAD had them), ``fast-forward`` or
    #: ``cherry-pick`` (brought by ``with_commits``), ``left-out`` (``without``: named in ``missing``).
    commits: Literal["present", "fast-forward", "cherry-pick", "left-out"] = "present"
    #: The commits HEAD lacked, oldest first (empty when ``present``).
    missing: list[BaseCommit] = Field(default_factory=list)
    #: Refs that hold them (a branch, a savepoint, the snapshot ref itself).
    kept_in: list[str] = Field(default_factory=list)
    #: HEAD before the commits were brought (``None``: HEAD did not move).
    moved_from: str | None = None
    #: Where the worktree's own uncommitted work went first (``--force``), or ``None``.
    saved_ref: str | None = None
    #: The staging could not be merged onto HEAD: files are back, nothing is staged.
    index_restored: bool = True
    files: int = 0


class DroppedDoc(BaseModel):
    name: str
    ref: str
    commit: str
    age: float


class KeptDoc(BaseModel):
    name: str
    why: str


class DropDoc(Document):
    dry_run: bool
    dropped: list[DroppedDoc] = Field(default_factory=list)
    #: Selected but not dropped: protected, or changed meanwhile.
    kept: list[KeptDoc] = Field(default_factory=list)
    #: The expiry that selected them (``expire`` and ``gitxact gc``), in seconds.
    expiry: float | None = None
    errors: int = 0
