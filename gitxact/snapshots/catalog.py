"""What snapshots there are, where each came from, and which ones must stay.

Snapshot refs are written by three features (a lease ending, a transaction's
savepoint, a failed TDD check) and by ``doctor``; none of them keeps an index of
them, and none needs to: the ref name says the kind and the namespace, the commit
says when and from where (:func:`gitxact.git.snapshots.capture`). So the catalog is
read from git each time, in one ``for-each-ref`` call, and can never disagree
with the refs.

A snapshot is *protected* while something live still depends on it: a transaction
whose journal names it (open, or kept under ``gitxact.savepointKeep``), or the
lease of its agent that was active when it was taken. ``drop`` and expiry never
touch a protected snapshot; the reasons are computed here once for both.
"""

from __future__ import annotations

import datetime
import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gitxact.errors import StateError, UsageError
from gitxact.git import refs
from gitxact.git import run as git
from gitxact.git.snapshots import SNAPSHOT_PREFIX
from gitxact.tx import journal_reader

if TYPE_CHECKING:
    from pathlib import Path

    from gitxact.core.repo import Repo
    from gitxact.leases.records import Lease
    from gitxact.snapshots.results import Kind, SnapshotInfo

#: The part after the agent in the name of a snapshot taken before ``restore --force``.
REPLACED = "before-restore"
_FIELDS = "%(objectname)%00%(refname)%00%(objecttype)%00%(parent)%00%(committerdate:unix)%00%(contents:subject)"
#: The time stamp gitxact puts at the end of the names it gives lease-end snapshots, optionally ``-N``.
_STAMP = re.compile(r"(\d{8}T\d{6}\.\d{6})Z(?:-\d+)?$")
#: ``gitxact: <what> in <worktree>`` (:func:`gitxact.git.snapshots.save`); worktrees are absolute paths.
_SOURCE = re.compile(r"^gitxact: .*? in (/.*)$")


class SnapshotNotFoundError(UsageError):
    """The name given is not a snapshot ref (exit 2: it was a wrong name, nothing was tried)."""


def kind_of(name: str) -> Kind:
    """The kind, read from the ref name the writer chose (see :data:`~gitxact.snapshots.results.Kind`)."""
    parts = name.split("/")
    if parts[0] == "orphaned":
        return "orphaned"
    if len(parts) > 2 and parts[1] == "undone":
        return "undone"
    if len(parts) > 2 and parts[1] == REPLACED:
        return "replaced"
    if len(parts) > 2 and parts[1].startswith("tx-"):
        return "savepoint"
    return "released"


def agent_of(namespace: str) -> str | None:
    # Agent names cannot contain "@" (gitxact.util.names), so worktree@<id> is never an agent.
    return None if "@" in namespace or namespace == "orphaned" else namespace


@dataclass
class Protections:
    """Why each snapshot must stay, gathered once (journals and lease records) for a whole listing."""

    by_ref: dict[str, str] = field(default_factory=dict)
    leases: dict[str, Lease] = field(default_factory=dict)
    #: Set when a state file could not be read: then everything it could protect is kept.
    unreadable_journal: str | None = None
    unreadable_leases: str | None = None

    def why(self, info: SnapshotInfo) -> str | None:
        if info.ref in self.by_ref:
            return self.by_ref[info.ref]
        if info.kind == "savepoint" and self.unreadable_journal:
            return f"a transaction journal cannot be read ({self.unreadable_journal}); run `gitxact recover`"
        if info.agent is None:
            return None
        if self.unreadable_leases:
            return f"the lease records cannot be read ({self.unreadable_leases}); run `gitxact recover`"
        lease = self.leases.get(info.agent)
        # Taken during the lease that still holds the agent's worktree: that lease's work. A
        # time known only to the second (the commit's) counts the second the lease began as
        # during it.
        if lease is None:
            return None
        began = math.floor(lease.created) if info.created.is_integer() else lease.created
        if info.created >= began:
            return f"taken during {info.agent}'s lease, which is still {_phase(lease)}"
        return None


def _phase(lease: Lease) -> str:
    return "active" if lease.phase == "active" else f"{lease.phase} (run `gitxact worktree reap`)"


def protections(repo: Repo) -> Protections:
    """Read the journals and lease records (no lock: both are replaced atomically)."""
    from gitxact.leases import records as leases
    from gitxact.tx.journal import all_journals, journal_ids

    found = Protections()
    journals = all_journals(repo)
    missing = sorted(set(journal_ids(repo)) - set(journals))
    if missing:
        found.unreadable_journal = ", ".join(journal_reader.file_name(wid) for wid in missing)
    for worktree_id, journal in journals.items():
        for kept in journal.kept:
            until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(kept.expires))
            for ref in kept.refs:
                found.by_ref[ref] = f"kept by committed transaction {kept.tx_id} until {until} (gitxact.savepointKeep)"
        tx = journal.tx
        if tx is None:
            continue
        records = list(tx.savepoints)
        if tx.step is not None and tx.step.savepoint is not None:
            records.append(tx.step.savepoint)
        for record in records:
            found.by_ref[record.snapshot_ref] = (
                f"savepoint {record.name!r} of open transaction {tx.label()} in worktree {worktree_id!r}"
            )
    try:
        found.leases = leases.load(repo)
    except StateError as exc:
        found.unreadable_leases = exc.reason
    return found


def cwd(repo: Repo) -> Path:
    """Snapshot refs are repository-wide: any worktree (or the common dir) reads them."""
    return repo.layout.worktree or repo.layout.common_dir


def read_all(repo: Repo, *, now: float | None = None, protect: Protections | None = None) -> list[SnapshotInfo]:
    """Every snapshot ref, oldest first, each with why it must stay (if it must)."""
    now = time.time() if now is None else now
    result = git.run(["for-each-ref", f"--format={_FIELDS}", SNAPSHOT_PREFIX], cwd(repo), read_only=True)
    found: list[SnapshotInfo] = []
    if not result.stdout.strip():
        return found  # none: no protections to read (``status`` imports no journal model then)
    from gitxact.snapshots.results import SnapshotInfo

    for line in result.lines():
        fields = line.split("\0")
        if len(fields) != 6 or fields[2] != "commit":
            continue  # not something gitxact wrote: a snapshot is always a commit
        oid, ref, _type, parents, stamp, subject = fields
        name = ref.removeprefix(SNAPSHOT_PREFIX)
        namespace = name.split("/", 1)[0]
        parent_ids = parents.split()
        created = taken_at(name, float(stamp) if stamp.isdigit() else 0.0)
        source = _SOURCE.match(subject)
        found.append(
            SnapshotInfo(
                ref=ref,
                name=name,
                kind=kind_of(name),
                namespace=namespace,
                agent=agent_of(namespace),
                commit=oid,
                # W's parents are HEAD and I; on an unborn branch only I (git/snapshots.py).
                head=parent_ids[0] if len(parent_ids) == 2 else None,
                created=created,
                age=round(max(0.0, now - created), 3),
                source=source.group(1) if source else None,
                message=subject,
            )
        )
    protect = protections(repo) if protect is None else protect
    for info in found:
        info.protected = protect.why(info)
    found.sort(key=lambda info: (info.created, info.name))
    return found


def taken_at(name: str, committed: float) -> float:
    """When the snapshot was taken: the microsecond stamp in its name, if the commit agrees.

    The commit time is whole seconds, too coarse to tell a lease-end snapshot from a
    lease acquired again in the same second. The name's stamp is exact, but a name is
    only a name: it is believed only within a minute of the commit that holds it.
    """
    match = _STAMP.search(name)
    if match is None:
        return committed
    try:
        parsed = datetime.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=datetime.UTC)
    except ValueError:
        return committed
    exact = parsed.timestamp()
    return exact if abs(exact - committed) < 60 else committed


def select(
    items: list[SnapshotInfo], *, agent: str | None = None, older_than: float | None = None
) -> list[SnapshotInfo]:
    """The snapshots of *agent* (its namespace), taken more than *older_than* seconds ago."""
    return [
        info
        for info in items
        if (agent is None or info.namespace == agent) and (older_than is None or info.age > older_than)
    ]


def full_ref(name: str) -> str:
    """``refs/gitxact/snapshots/<name>`` for a short name; a full one is checked to be a snapshot ref."""
    text = name.strip()
    ref = text if text.startswith("refs/") else SNAPSHOT_PREFIX + text.lstrip("/")
    if not ref.startswith(SNAPSHOT_PREFIX) or ref == SNAPSHOT_PREFIX:
        raise SnapshotNotFoundError(
            f"{name!r} is not a snapshot: snapshots are refs under {SNAPSHOT_PREFIX}",
            hint="`gitxact snapshots list` shows their names",
        )
    try:
        return refs.check_refname(ref)
    except UsageError:
        raise SnapshotNotFoundError(f"{name!r} is not a valid snapshot name") from None


def find(repo: Repo, name: str, items: list[SnapshotInfo] | None = None) -> SnapshotInfo:
    """The snapshot called *name* (short or full ref name), or :class:`SnapshotNotFoundError`."""
    ref = full_ref(name)
    for info in read_all(repo) if items is None else items:
        if info.ref == ref:
            return info
    raise SnapshotNotFoundError(f"no snapshot {name!r}", hint="`gitxact snapshots list` shows their names")
