"""Putting a snapshot's work back into a worktree.

Two cases, told apart by HEAD:

* HEAD is the commit the snapshot was taken on (the agent's kept branch, acquired
  again): files and index become exactly the snapshot's, untracked files included
  (:func:`gitxact.git.snapshots.restore_files`);
* HEAD moved on (a fresh lease from a newer base): the snapshot's changes are merged
  onto it like ``git stash apply`` would, computed as trees first; if any path
  conflicts, nothing is touched and the conflicting paths are named.

The snapshot's own commits come whole or are named: when HEAD lacks commits the
snapshot stands on (a red commit ``recover`` rolled back, a deleted branch), the
restore refuses (exit 3) unless told to bring them or to leave them out
(:mod:`gitxact.snapshots.commits`), so it never succeeds with part of the work missing.

Either way the worktree's own uncommitted work is never overwritten silently:
without ``force`` a dirty worktree is refused (exit 3); with it, that work goes to
a snapshot ref of its own first (``<ns>/before-restore/<time>``), so a restore can
always be undone by another restore. It runs under the target worktree's lock.
"""

from __future__ import annotations

import datetime
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import OperationFailedError, RefusedError, StateError, UsageError
from gitxact.git import merges, snapshots
from gitxact.git import run as git
from gitxact.leases import reader as lease_reader
from gitxact.leases import records as leases
from gitxact.snapshots import catalog, commits
from gitxact.snapshots.detail import changes
from gitxact.snapshots.results import BaseCommit, RestoreDoc
from gitxact.util.faults import crashpoint
from gitxact.util.names import validate_agent

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

#: How many conflicting paths an error names before it says "and N more".
_SHOWN = 10


def restore(
    repo: Repo,
    name: str,
    *,
    into: str | Path | None = None,
    force: bool = False,
    with_commits: bool | None = None,
) -> RestoreDoc:
    """Put snapshot *name*'s work back into a worktree (see the module's docstring).

    *with_commits*: when the target's HEAD lacks commits the snapshot stands on
    (:mod:`gitxact.snapshots.commits`), ``None`` refuses (exit 3, naming them), ``True``
    brings them first, ``False`` restores the work alone and names them in the result.
    """
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
        lacking = commits.missing(worktree, head, snap.head)
        if lacking and with_commits is None and snap.head is not None:
            again = _command(info.name, into, force=force)
            raise commits.refusal(info.name, worktree, head, snap.head, lacking, command=again)
        brought = None
        if lacking and with_commits and snap.head is not None:
            brought = commits.bring(worktree, head, snap.head, lacking, env)
        onto = brought.head if brought is not None else head
        exact = onto == snap.head
        merged = None if exact else snapshots.merge_onto(worktree, snap, onto, env)
        if merged is not None and merged.conflicts:
            raise _conflict(info.name, worktree, merged.conflicts, snap.head)
        doc = RestoreDoc(
            snapshot=info.name,
            into=str(worktree),
            method="exact" if exact else "applied",
            head=onto,
            snapshot_head=snap.head,
            files=len(changes(worktree, snap)),
        )
        if lacking and snap.head is not None:
            _describe_commits(doc, worktree, snap.head, lacking, brought)
        if dirty:
            doc.saved_ref = _save_replaced(repo, worktree, target.worktree_id, info.name, env)
        if brought is not None and brought.head != head:
            # The ref first, by compare-and-swap, so a raw git that moved it changes nothing
            # here; killed before the files follow, the worktree shows the old files as
            # staged changes, and restoring again with --force finishes (the snapshot is kept).
            commits.move_head(worktree, head, brought.head, env, f"gitxact: restore {info.name} with its commits")
            doc.moved_from = head
            crashpoint("restore-head-moved")
        if merged is None:
            snapshots.restore_files(worktree, target.git_dir, snap, env)
        else:
            doc.index_restored = merged.index_tree is not None
            index_tree = merged.index_tree or merges.tree_of(worktree, onto)
            snapshots.restore_trees(worktree, target.git_dir, merged.files_tree, index_tree, env)
    return doc


def _command(name: str, into: str | Path | None, *, force: bool) -> str:
    where = f" --into {shlex.quote(str(into))}" if into is not None else ""
    return f"gitxact snapshots restore {shlex.quote(name)}{where}" + (" --force" if force else "")


def _describe_commits(
    doc: RestoreDoc, worktree: Path, base: str, lacking: list[str], brought: commits.Brought | None
) -> None:
    titles = commits.subjects(worktree, lacking)
    became = brought.became if brought is not None else {}
    doc.commits = brought.how if brought is not None else "left-out"
    doc.missing = [BaseCommit(commit=c, subject=titles.get(c, ""), brought_as=became.get(c)) for c in lacking]
    doc.kept_in = commits.kept_in(worktree, base)


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
