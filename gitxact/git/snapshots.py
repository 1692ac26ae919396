"""Snapshots of uncommitted work as commit objects, and exact restores.

A snapshot is two commits, in the spirit of ``git stash`` but keeping untracked files
in the same tree:

* ``I`` — the index as a tree (what was staged), parent HEAD;
* ``W`` — the whole worktree as a tree: tracked files as they are on disk *and*
  untracked, not-ignored files; parents HEAD and ``I``.

In a sparse worktree (cone mode, :mod:`gitxact.worktrees.sparse`) the paths outside the
cone are index entries with the skip-worktree bit and no file: ``add -A --sparse`` keeps
them as they are (never "deleted") and records whatever *is* on disk out there (a file
an agent made or edited outside its cone is work too); a restore writes those files back.

Held by a ref (``refs/gitxact/...``) the objects survive ``gc``. Restoring brings
files, index and the set of files back exactly: files created since are removed,
deleted ones return, ignored files are never touched. It runs under the worktree
lock, which is the only reason the brief gap between reading the disk and rewriting
it is safe.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from gitxact.errors import GitError, OperationFailedError
from gitxact.git import merges, refs
from gitxact.git import run as git
from gitxact.util.names import numbered

#: Snapshot commits are internal objects (see :data:`gitxact.git.merges.INTERNAL_IDENTITY`).
_IDENTITY = merges.INTERNAL_IDENTITY


@dataclass(frozen=True)
class Snapshot:
    """Uncommitted state of one worktree at one moment."""

    commit: str  # W: the worktree commit
    index_commit: str  # I
    head: str | None  # HEAD commit then (None: unborn branch)
    head_ref: str | None  # the branch HEAD pointed at (None: detached)

    @property
    def worktree_tree(self) -> str:
        return self.commit + "^{tree}"

    @property
    def index_tree(self) -> str:
        return self.index_commit + "^{tree}"


def _temp_index(git_dir: Path) -> Path:
    """A private copy of the worktree's index (stat data included, so ``add -A`` is fast)."""
    import secrets  # here: its import (hashlib, random, base64) is one `status` need not pay

    path = git_dir / f"gitxact-index-{secrets.token_hex(6)}"
    source = git_dir / "index"
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        data = b""
    if data:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return path


#: ``git add`` of every file as it is: ``--sparse`` also takes a file outside a sparse cone
#: (without it git refuses such a path and exits 1), while entries with the skip-worktree
#: bit and no file stay as they are: not checked out is not deleted.
_ADD_ALL = ["add", "-A", "--sparse", "--", "."]


def worktree_tree(worktree: Path, git_dir: Path, env: dict[str, str] | None = None) -> str:
    """The worktree as it is on disk (tracked + untracked, not ignored) as a tree id; in a
    sparse worktree, the paths outside the cone that are not on disk as HEAD has them."""
    index = _temp_index(git_dir)
    child = {**(env or {}), "GIT_INDEX_FILE": str(index)}
    try:
        git.run(_ADD_ALL, worktree, env=child)
        return git.run(["write-tree"], worktree, env=child).stdout.strip()
    finally:
        with contextlib.suppress(FileNotFoundError):
            index.unlink()


def _index_tree(worktree: Path, git_dir: Path, env: dict[str, str] | None) -> str:
    """The index as a tree, written from a private copy of it.

    ``git write-tree`` takes ``index.lock`` to store its cache tree; a copy lets a
    snapshot be taken while that lock is held, or was left by a git killed there (the
    worktree of an agent that died mid-commit is exactly what reap must save).
    """
    index = _temp_index(git_dir)
    child = {**(env or {}), "GIT_INDEX_FILE": str(index)}
    try:
        result = git.run(["write-tree"], worktree, env=child, check=False)
        if result.ok:
            return result.stdout.strip()
        if git.run(["ls-files", "-u"], worktree, env=child, read_only=True, check=False).stdout.strip():
            raise OperationFailedError(
                f"cannot snapshot {worktree}: the index has unresolved merge conflicts",
                hint="resolve or abort the merge first (git merge --abort / git add <files>)",
            )
        raise GitError(["write-tree"], result.returncode, result.stderr, hint=f"the index of {worktree}")
    finally:
        with contextlib.suppress(FileNotFoundError):
            index.unlink()


def capture(worktree: Path, git_dir: Path, message: str, env: dict[str, str] | None = None) -> Snapshot:
    """Record HEAD, the index and every not-ignored file of *worktree* as commits."""
    head = git.rev_parse(worktree, "HEAD")
    symbolic = git.run(["symbolic-ref", "-q", "HEAD"], worktree, check=False, read_only=True)
    head_ref = symbolic.stdout.strip() or None if symbolic.ok else None
    index_tree = _index_tree(worktree, git_dir, env)
    files_tree = worktree_tree(worktree, git_dir, env)
    parents = ["-p", head] if head else []
    ids = {**(env or {}), **_IDENTITY}
    index_commit = git.run(
        ["commit-tree", index_tree, *parents, "-m", f"{message} (index)"], worktree, env=ids
    ).stdout.strip()
    commit = git.run(
        ["commit-tree", files_tree, *parents, "-p", index_commit, "-m", message], worktree, env=ids
    ).stdout.strip()
    return Snapshot(commit=commit, index_commit=index_commit, head=head, head_ref=head_ref)


def from_commit(worktree: Path, commit: str) -> Snapshot:
    """Rebuild a :class:`Snapshot` from its ``W`` commit (e.g. read back from a ref)."""
    parents = git.run(["rev-list", "--parents", "-n", "1", commit], worktree, read_only=True).stdout.split()
    if len(parents) == 2:  # unborn HEAD: W's only parent is I
        return Snapshot(commit=commit, index_commit=parents[1], head=None, head_ref=None)
    if len(parents) != 3:
        raise OperationFailedError(f"{commit} is not a gitxact snapshot commit")
    return Snapshot(commit=commit, index_commit=parents[2], head=parents[1], head_ref=None)


def restore_files(worktree: Path, git_dir: Path, snapshot: Snapshot, env: dict[str, str] | None = None) -> None:
    """Make files and index exactly what *snapshot* recorded (HEAD is the caller's job)."""
    restore_trees(worktree, git_dir, snapshot.worktree_tree, snapshot.index_tree, env)


def restore_trees(
    worktree: Path, git_dir: Path, files_tree: str, index_tree: str, env: dict[str, str] | None = None
) -> None:
    """Make the files *files_tree* and the index *index_tree*, removing files in neither.

    All of it happens in a private copy of the index (stat data included): ``add -A``
    makes it the worktree as it is now (tree ``CURRENT``); ``read-tree --reset -u
    CURRENT FILES`` is git's own two-tree switch, which rewrites changed files, brings back
    deleted ones and removes files that exist now but not in *files_tree* (ignored
    files are in neither tree, so they are left alone); ``read-tree --reset INDEX``
    then makes it the wanted index, keeping stat data for every entry that did not
    change. Finally the copy replaces the real index the way git replaces it: take
    ``index.lock`` with O_EXCL (so a raw git at work there makes this fail instead of
    being overwritten), rename the copy onto the lock, rename the lock onto the index.
    Because stat data survives, no refresh of the whole worktree is needed afterwards.
    """
    scratch = _temp_index(git_dir)
    child = {**(env or {}), "GIT_INDEX_FILE": str(scratch)}
    try:
        git.run(_ADD_ALL, worktree, env=child)
        current = git.run(["write-tree"], worktree, env=child).stdout.strip()
        git.run(["read-tree", "--reset", "-u", current, files_tree], worktree, env=child)
        if (git_dir / "info" / "sparse-checkout").is_file():
            _write_outside_cone(worktree, files_tree, child)
        git.run(["read-tree", "--reset", index_tree], worktree, env=child)
        _install_index(git_dir, scratch)
    finally:
        for leftover in (scratch, scratch.with_name(scratch.name + ".lock")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _write_outside_cone(worktree: Path, files_tree: str, env: dict[str, str]) -> None:
    """Write the files of *files_tree* outside a sparse cone that differ from HEAD.

    ``read-tree -u`` in a sparse worktree applies the cone: an entry outside it gets the
    skip-worktree bit and no file, right for what HEAD has there, but work an agent made
    out there (in the snapshot because :data:`_ADD_ALL` took it) would stay in the tree
    only. Those entries lose the bit and ``checkout-index`` writes them (git's own
    checks against writing through a symlink apply).
    """
    listed = git.run(["ls-files", "-t", "-z"], worktree, env=env, read_only=True).zfields()
    skipped = {entry[2:] for entry in listed if entry.startswith("S ")}
    if not skipped:
        return
    head = git.rev_parse(worktree, "HEAD")
    base = head + "^{tree}" if head else merges.empty_tree(worktree)
    changed = git.run(
        ["diff-tree", "-r", "-z", "--no-renames", "--name-only", base, files_tree], worktree, read_only=True
    ).zfields()
    work = sorted(skipped.intersection(changed))
    if work:
        listing = "\0".join(work) + "\0"
        git.run(["update-index", "--no-skip-worktree", "-z", "--stdin"], worktree, env=env, input=listing)
        git.run(["checkout-index", "-f", "-z", "--stdin"], worktree, env=env, input=listing)


@dataclass(frozen=True)
class Merged:
    """A snapshot's changes carried onto another HEAD, as trees (nothing on disk has changed)."""

    files_tree: str
    #: ``None`` when the staged changes conflict with HEAD (the files may still merge).
    index_tree: str | None
    #: Paths whose changes conflict with HEAD; empty when *files_tree* is usable.
    conflicts: list[str]


def merge_onto(worktree: Path, snapshot: Snapshot, head: str | None, env: dict[str, str] | None = None) -> Merged:
    """The snapshot's changes (from its HEAD to W, and to I) applied on top of *head*.

    This is ``git stash apply``'s three-way merge with the snapshot's HEAD as the base
    (:func:`gitxact.git.merges.three_way`), so no file is touched until the result is
    known to be clean.
    """
    head_tree = merges.tree_of(worktree, head)
    files_tree, conflicts = merges.three_way(worktree, head_tree, snapshot.head, snapshot.commit, env)
    index_tree: str | None = None
    if not conflicts:
        index_tree, index_conflicts = merges.three_way(worktree, head_tree, snapshot.head, snapshot.index_commit, env)
        if index_conflicts:
            index_tree = None
    return Merged(files_tree=files_tree, index_tree=index_tree, conflicts=conflicts)


def _install_index(git_dir: Path, replacement: Path) -> None:
    """Replace ``<git_dir>/index`` with *replacement* under git's own ``index.lock`` protocol."""
    index = git_dir / "index"
    lock = git_dir / "index.lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except FileExistsError:
        raise OperationFailedError(
            f"{lock} exists: another git process is working in this worktree",
            hint="wait for it, or if none runs, `gitxact recover` removes a lock whose owner is dead",
        ) from None
    os.close(fd)
    try:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(replacement, os.stat(index).st_mode & 0o777)
        os.replace(replacement, lock)
        os.replace(lock, index)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        raise


def has_changes(worktree: Path) -> bool:
    """Uncommitted or untracked (not ignored) work in *worktree*?"""
    result = git.run(["status", "--porcelain", "-z", "--untracked-files=all"], worktree, read_only=True)
    return bool(result.stdout)


def has_work_left(worktree: Path) -> bool:
    """Work still in *worktree*'s files: any change but a tracked file deleted from it.

    A release (phase ``removing``) saved the work before it deleted a file: a worktree
    it finished emptying shows deletions only, and a half-emptied one the files its
    snapshot holds (:func:`holds_worktree` tells). ``-z`` entries are ``XY path``, a
    rename's or copy's followed by its source path.
    """
    result = git.run(["status", "--porcelain", "-z", "--untracked-files=all"], worktree, read_only=True)
    entries = iter(result.stdout.split("\0"))
    for entry in entries:
        if len(entry) < 4:
            continue
        if entry[0] in "RC":
            next(entries, None)  # the source path of a rename or copy
        if entry[1] != "D":
            return True
    return False


def holds_worktree(worktree: Path, git_dir: Path, commit: str, env: dict[str, str] | None = None) -> bool:
    """Whether the snapshot *commit* holds every file now in *worktree*, as it is now.

    Files gone from the worktree do not count (an interrupted release deleted them after
    saving this snapshot); one added or changed since, or a type change, does.
    """
    now = worktree_tree(worktree, git_dir, env)
    found = git.run(
        ["diff-tree", "-r", "-z", "--no-renames", "--name-only", "--diff-filter=ACMT", f"{commit}^{{tree}}", now],
        worktree,
        read_only=True,
        check=False,
    )
    return found.ok and not found.stdout


def changed_submodules(worktree: Path) -> list[str]:
    """Submodules whose checkout differs from what the index records (new commits, edits, new files).

    Snapshots record a submodule as its commit (a gitlink), never its files, so a
    restore cannot bring a submodule's own working tree back. Without ``.gitmodules``
    there are none to look for, and no ``git status`` is paid.
    """
    if not (worktree / ".gitmodules").exists():
        return []
    result = git.run(["status", "--porcelain=2", "-z", "--ignore-submodules=none"], worktree, read_only=True)
    changed = []
    for record in result.stdout.split("\0"):
        fields = record.split(" ")
        # "1 XY sub mH mI mW hH hI path": sub is "N..." for a file, "S<c><m><u>" for a submodule.
        if fields[0] in ("1", "2") and len(fields) > 8 and fields[2].startswith("S") and fields[2] != "S...":
            changed.append(" ".join(fields[8 if fields[0] == "1" else 9 :]))
    return changed


SNAPSHOT_PREFIX = "refs/gitxact/snapshots/"


def save(common_dir: Path, path: Path, name: str, what: str, env: dict[str, str]) -> str:
    """Snapshot HEAD, index and every file of the worktree at *path* to ``refs/gitxact/snapshots/<name>``.

    The first free of *name*, ``-2``, ``-3``...: two savers never overwrite each other.
    *env* carries the caller's locks to the git it runs (``Locks.child_env``).
    """
    git_dir = Path(git.run(["rev-parse", "--absolute-git-dir"], path, read_only=True).stdout.strip())
    snap = capture(path, git_dir, f"gitxact: {what} in {path}", env)
    for free in numbered(name):
        ref = SNAPSHOT_PREFIX + free
        try:
            refs.apply(
                common_dir,
                [refs.RefUpdate(ref, snap.commit, refs.MUST_NOT_EXIST)],
                message=f"gitxact: save {what}",
                env=env,
            )
        except refs.RefConflictError:
            continue
        return ref
    raise OperationFailedError(f"could not name a snapshot ref for {what}")
