"""Putting a snapshot's work back into a worktree.

Two cases, told apart by HEAD:

* HEAD is the commit the snapshot was taken on (the agent's kept branch, acquired
  again): files and index become exactly the snapshot's, untracked files included
  (:func:`gitxact.git.snapshots.restore_files`);
* HEAD moved on (a fresh lease from a newer base): the snapshot's changes are merged
  onto it like ``git stash apply`` would, computed as trees first; if any path
  conflicts, nothing is touched and the conflicting paths are named.

Either way the worktree's own uncommitted work is never overwritten silently:
without ``force`` a dirty worktree is refused (exit 3); with it, that work goes to
a snapshot ref of its own first (``<ns>/before-restore/<time>``), so a restore can
always be undone by another restore. It runs under the target worktree's lock.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import OperationFailedError, RefusedError, StateError, UsageError
from gitxact.git import run as git
from gitxact.git import snapshots
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.snapshots import catalog
from gitxact.snapshots.detail import changes
from gitxact.snapshots.results import RestoreDoc
from gitxact.util.names import validate_agent

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

#: How many conflicting paths an error names before it says "and N more".
_SHOWN = 10


def restore(repo: Repo, name: str, *, into: str | Path | None = None, force: bool = False) -> RestoreDoc:
    info = catalog.find(repo, name)
    target = target_layout(repo, into)
    worktree = target.require_worktree()
    _check_boundary(repo, worktree)
    env = repo.locks.child_env()
    repo.store.ensure("locks")
    with repo.locks.worktree(target.worktree_id):
        _refuse_busy_transaction(repo, target.worktree_id)
        snap = snapshots.from_commit(worktree, info.commit)
        head = git.rev_parse(worktree, "HEAD")
        dirty = snapshots.has_changes(worktree)
        if dirty and not force:
            raise RefusedError(
                f"worktree {worktree} has uncommitted or untracked work; restoring {info.name} would overwrite it",
                hint="commit it first, or pass --force to save it to a snapshot ref and restore anyway",
            )
        exact = head == snap.head
        merged = None if exact else snapshots.merge_onto(worktree, snap, head, env)
        if merged is not None and merged.conflicts:
            raise _conflict(info.name, worktree, merged.conflicts, snap.head)
        doc = RestoreDoc(
            snapshot=info.name,
            into=str(worktree),
            method="exact" if exact else "applied",
            head=head,
            snapshot_head=snap.head,
            files=len(changes(worktree, snap)),
        )
        if dirty:
            doc.saved_ref = _save_replaced(repo, worktree, target.worktree_id, info.name, env)
        if merged is None:
            snapshots.restore_files(worktree, target.git_dir, snap, env)
        else:
            doc.index_restored = merged.index_tree is not None
            index_tree = merged.index_tree or (head + "^{tree}" if head else snapshots.empty_tree(worktree))
            snapshots.restore_trees(worktree, target.git_dir, merged.files_tree, index_tree, env)
    return doc


def target_layout(repo: Repo, into: str | Path | None) -> git.RepoLayout:
    """The worktree to restore into: this one, a folder, or the worktree leased to an agent."""
    if into is None:
        return repo.layout
    text = str(into)
    if os.path.isdir(text):
        layout = git.discover(Path(text))
    else:
        try:
            agent = validate_agent(text)
        except UsageError:
            agent = None
        lease = leases.for_agent(repo, agent) if agent else None
        if lease is None:
            raise UsageError(
                f"--into {text}: no such folder, and no agent of that name holds a lease",
                hint="name a worktree folder or a leased agent (`gitxact worktree list`)",
            )
        layout = git.discover(Path(lease.path))
    if os.path.realpath(layout.common_dir) != os.path.realpath(repo.layout.common_dir):
        raise UsageError(
            f"--into {text} is a worktree of another repository ({layout.common_dir})",
            hint="snapshots are restored within the repository that holds them",
        )
    return layout


def _check_boundary(repo: Repo, worktree: Path) -> None:
    """An agent restores into its own worktree only (the rule transactions follow too)."""
    token = lease_reader.env_token()
    if repo.agent is None and token is None:
        return
    lease = leases.for_path(repo, worktree)
    why = None if lease is None else lease_reader.trespass(lease.agent, lease.token_hash, repo.agent, token)
    if why is not None:
        raise RefusedError(
            f"worktree {worktree}: {why}",
            hint=f"check {lease_reader.TOKEN_ENV} and GITXACT_AGENT; restore into your own worktree",
        )


def _refuse_busy_transaction(repo: Repo, worktree_id: str) -> None:
    """A step in progress (a TDD check running, a rollback interrupted) owns the files now."""
    from gitxact.tx.journal import JournalFile, journal_ids

    if worktree_id not in journal_ids(repo):
        return
    try:
        tx = JournalFile(repo, worktree_id).peek().tx
    except StateError as exc:
        raise RefusedError(f"the transaction journal of this worktree cannot be read: {exc.reason}") from exc
    if tx is not None and tx.step is not None:
        raise RefusedError(
            f"transaction {tx.label()} in this worktree is in the middle of `{tx.step.op}` "
            f"({tx.step.owner.describe()})",
            hint="wait for it to finish, or run `gitxact recover` if its process died",
        )


def _conflict(name: str, worktree: Path, paths: list[str], base: str | None) -> OperationFailedError:
    shown = ", ".join(paths[:_SHOWN]) + (f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else "")
    where = f"`git worktree add --detach DIR {base[:12]}`" if base else "a worktree on an unborn branch"
    return OperationFailedError(
        f"cannot restore {name} into {worktree}: its changes conflict with HEAD in {shown}; nothing was changed",
        hint=f"restore it where it was taken ({where}, then `gitxact -C DIR snapshots restore {name}`), "
        f"or take single files with `git checkout {catalog.full_ref(name)} -- PATH`",
    )


def _save_replaced(repo: Repo, worktree: Path, worktree_id: str, name: str, env: dict[str, str]) -> str:
    lease = leases.for_path(repo, worktree)
    namespace = lease.agent if lease is not None else f"worktree@{worktree_id}"
    stamp = datetime.datetime.now(tz=datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return snapshots.save(
        repo.layout.common_dir,
        worktree,
        f"{namespace}/{catalog.REPLACED}/{stamp}",
        f"work replaced by restoring {name}",
        env,
    )
