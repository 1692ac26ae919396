"""Dropping snapshots: by name, by selection, or by age (``gitxact.snapshotExpiry``).

Snapshots are the last copy of work nobody committed, so deleting one is the one
step here that can lose something. Three rules keep it from losing the wrong thing:

* only refs under ``refs/gitxact/snapshots/`` are ever deleted, each by
  compare-and-swap (``update-ref -d REF OLD``): a ref that moved since it was listed
  is kept and reported, never deleted with its new value;
* a protected snapshot (:mod:`gitxact.snapshots.catalog`: a live lease's, an open or
  kept transaction's) is never deleted; named explicitly, the whole drop is refused;
* it runs under the repository lock, exclusive: no lease starts or ends meanwhile,
  so a lease-end snapshot cannot appear half-protected (transactions write their
  journal before their refs, so a savepoint ref is protected from its first moment).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from gitxact.errors import RefusedError, UsageError
from gitxact.git import refs
from gitxact.locking.tickets import EXCLUSIVE
from gitxact.snapshots import catalog
from gitxact.snapshots.results import DropDoc, DroppedDoc, KeptDoc, SnapshotInfo
from gitxact.snapshots.setting import configured_expiry
from gitxact.util.durations import format_duration

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from gitxact.core.repo import Repo


def drop(
    repo: Repo,
    names: Sequence[str] = (),
    *,
    agent: str | None = None,
    older_than: float | None = None,
    everything: bool = False,
    dry_run: bool = False,
) -> DropDoc:
    """Delete the named snapshots, or those the selection picks; never a protected one.

    Named snapshots are all-or-nothing on protection: if one of them is protected the
    drop is refused (exit 3) before anything is deleted, since the caller meant every
    one of them. A selection (``--agent``, ``--older-than``, ``--all``) keeps protected
    ones and says why.
    """
    selecting = agent is not None or older_than is not None or everything
    if names and selecting:
        raise UsageError("name snapshots, or select them with --agent/--older-than/--all, not both")
    if not names and not selecting:
        raise UsageError(
            "no snapshot named or selected",
            hint="name one (`gitxact snapshots list`), or select with --agent AGENT, --older-than 7d or --all",
        )
    with _locked(repo, dry_run):
        items = catalog.read_all(repo)
        doc = DropDoc(dry_run=dry_run)
        if names:
            chosen = _named(repo, names, items)
        else:
            chosen = []
            for info in catalog.select(items, agent=agent, older_than=older_than):
                if info.protected:
                    doc.kept.append(KeptDoc(name=info.name, why=info.protected))
                else:
                    chosen.append(info)
        _delete(repo, chosen, doc)
    return doc


def expire(repo: Repo, *, dry_run: bool = False, expiry: float | None = None) -> DropDoc:
    """Drop every unprotected snapshot older than *expiry* (default: ``gitxact.snapshotExpiry``).

    With no expiry configured nothing is dropped: keeping work is the default.
    """
    limit = configured_expiry(repo) if expiry is None else expiry
    if limit is None:
        return DropDoc(dry_run=dry_run)
    with _locked(repo, dry_run):
        doc = DropDoc(dry_run=dry_run, expiry=limit)
        chosen = []
        for info in catalog.select(catalog.read_all(repo), older_than=limit):
            if info.protected:
                doc.kept.append(KeptDoc(name=info.name, why=info.protected))
            else:
                chosen.append(info)
        _delete(repo, chosen, doc)
    return doc


def expire_for_gc(repo: Repo, *, force: bool) -> DropDoc | None:
    """What ``gitxact gc`` does first: the configured expiry, unless gc is about to be refused.

    ``None`` when nothing was attempted: no expiry configured, or leases are active and
    gc was not forced (a refused gc changes nothing, snapshots included).
    """
    from gitxact.leases import reader as lease_reader

    if configured_expiry(repo) is None:
        return None
    if not force and lease_reader.load(repo.layout.common_dir):
        return None
    return expire(repo)


def describe(doc: DropDoc) -> str:
    """One line for people (``gitxact gc`` prints it on stderr, before git's own output)."""
    verb = "would drop" if doc.dry_run else "dropped"
    age = f" older than {format_duration(doc.expiry)}" if doc.expiry is not None else ""
    text = f"{verb} {len(doc.dropped)} snapshot(s){age}"
    if doc.kept:
        text += f"; kept {len(doc.kept)} (protected or changed meanwhile)"
    return text


@contextlib.contextmanager
def _locked(repo: Repo, dry_run: bool) -> Iterator[None]:
    if dry_run:
        yield
        return
    repo.store.ensure("locks")
    with repo.locks.repository(EXCLUSIVE):
        yield


def _named(repo: Repo, names: Sequence[str], items: list[SnapshotInfo]) -> list[SnapshotInfo]:
    chosen: dict[str, SnapshotInfo] = {}
    for name in names:
        info = catalog.find(repo, name, items)
        chosen[info.ref] = info
    protected = [info for info in chosen.values() if info.protected]
    if protected:
        lines = "".join(f"\n  {info.name}: {info.protected}" for info in protected)
        raise RefusedError(
            f"refused: {len(protected)} of the named snapshot(s) must stay; nothing was dropped:{lines}",
            hint="end the lease or the transaction first (`gitxact worktree release`, `gitxact tx commit`)",
        )
    return list(chosen.values())


def _delete(repo: Repo, chosen: list[SnapshotInfo], doc: DropDoc) -> None:
    cwd = repo.layout.worktree or repo.layout.common_dir
    for info in chosen:
        if not doc.dry_run:
            try:
                refs.apply(
                    cwd,
                    [refs.RefUpdate(info.ref, None, info.commit)],
                    message="gitxact: drop snapshot",
                    env=repo.locks.child_env(),
                    names_checked=True,
                )
            except refs.RefConflictError as exc:
                doc.kept.append(KeptDoc(name=info.name, why=f"changed meanwhile, kept: {exc.message}"))
                doc.errors += 1
                continue
        doc.dropped.append(DroppedDoc(name=info.name, ref=info.ref, commit=info.commit, age=info.age))
