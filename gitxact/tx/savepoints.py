"""Savepoints on the git side: HEAD plus a snapshot of uncommitted work, held by refs.

A savepoint is two refs::

    refs/gitxact/savepoints/<namespace>/<tx-id>/<name>  -> the commit HEAD was at
    refs/gitxact/snapshots/<namespace>/<tx-id>/<name>   -> W, the snapshot of index + files

``<namespace>`` is the agent holding the worktree's lease, else ``worktree@<id>``
(the worktree id git uses). Agent names cannot contain ``@`` (see
:func:`gitxact.util.identity.validate_agent`), so a worktree-derived namespace can never
collide with an agent's. Transaction ids start with ``tx-`` so they never collide with
the time-stamped snapshot refs a forced lease release writes beside them.

Restoring moves HEAD and its branch with compare-and-swap ref updates, then makes
files and index exactly the snapshot (:func:`gitxact.git.snapshots.restore_files`). All of
this runs under the worktree lock; the journal (:mod:`gitxact.tx.journal`) records every
step before it runs.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitxactError, OperationFailedError
from gitxact.git import refs, snapshots
from gitxact.git import run as git
from gitxact.git.refs import MUST_NOT_EXIST, RefConflictError, RefUpdate
from gitxact.leases import records as leases
from gitxact.tx.journal import HeadState, SavepointRecord
from gitxact.util import faults

if TYPE_CHECKING:
    from collections.abc import Iterable

    from gitxact.core.repo import Repo

SAVEPOINTS = "refs/gitxact/savepoints"
SNAPSHOTS = "refs/gitxact/snapshots"
WORKTREE_NAMESPACE = "worktree@"


def namespace_for(repo: Repo) -> str:
    """The lease owner of this worktree, else ``worktree@<worktree-id>``."""
    worktree = repo.layout.require_worktree()
    lease = leases.for_path(repo, worktree)
    if lease is not None:
        return lease.agent
    return WORKTREE_NAMESPACE + repo.layout.worktree_id


def new_tx_id() -> str:
    """Sortable by time, unique by a random tail, and a valid ref component."""
    return "tx-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def ref_names(namespace: str, tx_id: str, name: str) -> tuple[str, str]:
    return f"{SAVEPOINTS}/{namespace}/{tx_id}/{name}", f"{SNAPSHOTS}/{namespace}/{tx_id}/{name}"


def _env(repo: Repo) -> dict[str, str]:
    # Our locks travel to hooks (a reference-transaction hook must not wait for them).
    return repo.locks.child_env()


def _cwd(repo: Repo) -> Path:
    # Savepoint refs are repository-wide: recover may handle them from any worktree.
    return repo.layout.worktree or repo.layout.common_dir


def read_head(worktree: Path) -> HeadState:
    """HEAD's commit and branch in one git call (two when the branch is unborn)."""
    both = git.run(["rev-parse", "HEAD", "--symbolic-full-name", "HEAD"], worktree, check=False, read_only=True)
    lines = both.lines()
    if both.ok and len(lines) == 2:
        return HeadState(commit=lines[0], ref=None if lines[1] == "HEAD" else lines[1])
    symbolic = git.run(["symbolic-ref", "-q", "HEAD"], worktree, check=False, read_only=True)
    ref = symbolic.stdout.strip() or None if symbolic.ok else None
    return HeadState(commit=git.rev_parse(worktree, "HEAD"), ref=ref)


def capture(repo: Repo, namespace: str, tx_id: str, name: str) -> SavepointRecord:
    """Snapshot HEAD, index and files as objects; the refs come later (write-ahead)."""
    worktree = repo.layout.require_worktree()
    snap = snapshots.capture(worktree, repo.layout.git_dir, f"gitxact savepoint {tx_id}/{name}", _env(repo))
    ref, snapshot_ref = ref_names(namespace, tx_id, name)
    return SavepointRecord(
        name=name,
        head=HeadState(commit=snap.head, ref=snap.head_ref),
        snapshot=snap.commit,
        snapshot_index=snap.index_commit,
        ref=ref if snap.head is not None else None,
        snapshot_ref=snapshot_ref,
        created=time.time(),
    )


def current_values(repo: Repo, names: Iterable[str]) -> dict[str, str]:
    """The values of the given full ref names that exist (one git call)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    result = repo.git(["for-each-ref", "--format=%(objectname) %(refname)", *wanted], read_only=True)
    found: dict[str, str] = {}
    for line in result.lines():
        oid, _, name = line.partition(" ")
        if name in wanted:
            found[name] = oid
    return found


def create_refs(repo: Repo, wanted: dict[str, str], *, fresh: bool = False) -> None:
    """Create the refs that do not exist yet (idempotent, so recovery can finish it).

    A ref that exists with another value belongs to someone else: a conflict.
    ``fresh``: the names are new (a new transaction id), so skip looking first; the
    create-only update still refuses an existing ref.
    """
    if fresh:
        updates = [RefUpdate(name, value, MUST_NOT_EXIST) for name, value in sorted(wanted.items())]
        refs.apply(_cwd(repo), updates, message="gitxact: savepoint", env=_env(repo), names_checked=True)
        return
    present = current_values(repo, wanted)
    for name, value in present.items():
        if value != wanted[name]:
            raise RefConflictError(f"{name} already exists at {value[:12]}, not {wanted[name][:12]}")
    updates = [RefUpdate(name, value, MUST_NOT_EXIST) for name, value in sorted(wanted.items()) if name not in present]
    refs.apply(_cwd(repo), updates, message="gitxact: savepoint", env=_env(repo), names_checked=True)


def delete_refs(repo: Repo, expected: dict[str, str]) -> list[str]:
    """Delete the refs still at their expected value; return the ones left alone (moved by someone).

    The common case (all present, as recorded) is one git call; only when that fails
    (a ref already gone, e.g. a recovery finishing a drop) is each ref looked at.
    """
    if not expected:
        return []
    everything = [RefUpdate(name, None, value) for name, value in sorted(expected.items())]
    try:
        refs.apply(_cwd(repo), everything, message="gitxact: drop savepoint", env=_env(repo), names_checked=True)
    except GitxactError:
        pass
    else:
        return []
    present = current_values(repo, expected)
    moved = sorted(name for name, value in present.items() if value != expected[name])
    updates = [RefUpdate(name, None, value) for name, value in sorted(present.items()) if name not in moved]
    refs.apply(_cwd(repo), updates, message="gitxact: drop savepoint", env=_env(repo), names_checked=True)
    return moved


def move_head(
    repo: Repo,
    target: HeadState,
    *,
    before: HeadState,
    branch_before: str | None,
    message: str,
    now: HeadState | None = None,
) -> None:
    """Make HEAD *target*: attached to its branch at its commit, or detached at it.

    Idempotent and compare-and-swap: a ref is moved only from the value the journal
    recorded when the step began (or left alone when it already has the target), so
    a finishing ``recover`` never overwrites a commit someone made meanwhile.
    """
    worktree = repo.layout.require_worktree()
    env = _env(repo)
    if now is None:
        now = read_head(worktree)
    if target.ref is None:
        if target.commit is None:
            raise OperationFailedError("a detached savepoint without a commit cannot be restored")
        if now.ref is None and now.commit == target.commit:
            return
        if now.commit not in (before.commit, target.commit):
            raise _moved("HEAD", now.commit, before.commit, target.commit)
        refs.apply(
            worktree,
            [RefUpdate("HEAD", target.commit, now.commit or MUST_NOT_EXIST, no_deref=True)],
            message=message,
            env=env,
        )
        return
    branch = target.ref
    value = now.commit if now.ref == branch else refs.read(worktree, branch)
    if value != target.commit:
        if value not in (branch_before, target.commit):
            raise _moved(branch, value, branch_before, target.commit)
        if target.commit is None:
            update = RefUpdate(branch, None, value)
        else:
            update = RefUpdate(branch, target.commit, value or MUST_NOT_EXIST)
        refs.apply(worktree, [update], message=message, env=env)
    if now.ref != branch:
        # git 2.39's `update-ref --stdin` cannot re-attach HEAD (no symref-update), so this
        # one write is not a compare-and-swap; it runs under the worktree lock after the
        # check above, and HEAD is per-worktree, so only a raw git here could race it.
        repo.git(["symbolic-ref", "-m", message, "HEAD", branch], cwd=worktree)


def _moved(ref: str, now: str | None, before: str | None, target: str | None) -> RefConflictError:
    return RefConflictError(
        f"{ref} moved to {now or 'nothing'} meanwhile (expected {before or 'nothing'} or {target or 'nothing'});"
        " it was not touched",
        hint=f"keep that work elsewhere, then point {ref} back at {before or 'nothing'} and run `gitxact recover`",
    )


def restore(
    repo: Repo, sp: SavepointRecord, *, before: HeadState, branch_before: str | None, now: HeadState | None = None
) -> None:
    """HEAD and its branch, then index and files, exactly as at *sp* (*now*: HEAD if just read)."""
    move_head(
        repo, sp.head, before=before, branch_before=branch_before, message=f"gitxact: rollback to {sp.name}", now=now
    )
    faults.crashpoint("rollback-after-refs")
    snap = snapshots.Snapshot(
        commit=sp.snapshot, index_commit=sp.snapshot_index, head=sp.head.commit, head_ref=sp.head.ref
    )
    snapshots.restore_files(repo.layout.require_worktree(), repo.layout.git_dir, snap, _env(repo))
