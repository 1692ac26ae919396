"""A lease's worktree in git's own registry: add (locked in the same step), find, relock, remove.

Repository-wide git work runs in the common dir so it does not depend on which worktree
the caller stands in (or on the main worktree existing). Nothing here takes a lock.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError, RefusedError
from gitxact.git import lockfiles
from gitxact.git import run as git
from gitxact.leases import reader as lease_reader
from gitxact.util.faults import crashpoint

if TYPE_CHECKING:
    from gitxact.core.repo import Repo


def registrations(repo: Repo) -> dict[str, git.WorktreeEntry]:
    """git's worktrees by path (as git prints it)."""
    return {str(entry.path): entry for entry in git.list_worktrees(repo.layout.common_dir)}


def checked_out_at(entries: dict[str, git.WorktreeEntry], branch: str) -> str | None:
    full = f"refs/heads/{branch}"
    for path, entry in entries.items():
        if entry.branch == full:
            return path
    return None


def lock_reason(agent: str, pid: int, host: str) -> str:
    return f"{lease_reader.LOCK_REASON_PREFIX}{agent} (owner pid {pid} on {host})"


def add_worktree(repo: Repo, path: Path, branch: str, start: str, *, create: bool, reason: str) -> None:
    """``git worktree add --no-checkout --lock``: registered, on its branch and locked in one
    step, so a ``prune`` can never catch it in between; no file is checked out yet (that is
    :func:`check_out`, outside the repository lock). *start* is a commit id (new branch) or
    the branch itself."""
    args = ["worktree", "add", "--no-checkout", "--lock", "--reason", reason]
    args += ["-b", branch, str(path), start] if create else [str(path), branch]
    try:
        repo.git(args, cwd=repo.layout.common_dir)
    except GitError as exc:
        if "already checked out" in exc.stderr or "already used by worktree" in exc.stderr:
            raise RefusedError(f"branch {branch!r} is checked out elsewhere: {exc.stderr.strip()}") from exc
        raise


#: What git passes the post-checkout hook as the previous HEAD of a new worktree.
NULL_OID = "0" * 40


def check_out(repo: Repo, path: Path) -> None:
    """Fill the worktree that :func:`add_worktree` registered with what ``git worktree add``
    itself runs after registering: ``git reset --hard --no-recurse-submodules`` (index and
    files from HEAD; the index is written last). Only the new worktree's lock is needed:
    nobody else has been handed its path."""
    repo.git(["reset", "--hard", "--no-recurse-submodules", "--quiet"], cwd=path)


def post_checkout(repo: Repo, path: Path, commit: str) -> None:
    """The ``post-checkout`` hook, as ``git worktree add`` runs it after its checkout
    (previous HEAD all zeros, the commit checked out, ``1``); a failing hook fails the add."""
    repo.git(["hook", "run", "--ignore-missing", "post-checkout", "--", NULL_OID, commit, "1"], cwd=path)


def checkout_finished(admin: Path) -> bool:
    """Whether the checkout of a worktree added with ``--no-checkout`` completed: its index
    is written once, by the ``reset --hard``, at the very end (renamed from ``index.lock``)."""
    return (admin / "index").is_file()


def leftover_work(repo: Repo, path: Path) -> bool:
    """Whether a worktree whose checkout never finished holds anything but git's own files.

    Its index is first set to HEAD (files untouched); then a file that is missing is one
    the checkout had not written yet, not work, while a file that differs from HEAD, or
    one HEAD does not have, is kept (the caller saves it before removing the worktree).
    """
    repo.git(["read-tree", "HEAD"], cwd=path)
    status = git.run(["status", "--porcelain", "-z", "--untracked-files=all"], path, read_only=True)
    return any(entry[:2] != " D" for entry in status.zfields() if entry)


def git_at_work(repo: Repo, path: Path, admin: Path) -> str | None:
    """Why a git may still be working in the worktree at *path* (``None`` when none is).

    A git that a killed acquire started (its checkout) is not killed with it: it goes on
    writing files and holds the worktree's ``index.lock``. :func:`gitxact.git.lockfiles.holders`
    finds any git whose current folder is the worktree or its admin folder, or that has
    its ``index.lock`` open; without ``/proc`` an ``index.lock`` there counts as a git at
    work (fail closed), while no ``index.lock`` means no checkout is running.
    """
    lock = admin / "index.lock"
    if not os.path.lexists(lock) and not lockfiles.PROC.is_dir():
        return None  # no checkout holds the index, and no other git can be looked for
    busy = lockfiles.holders([lock], [os.path.realpath(path), os.path.realpath(admin)])
    return next(iter(busy.values()), None)


def empty_folder(path: Path) -> None:
    """Delete everything in the worktree at *path* but its ``.git`` file (what ``git worktree
    remove -f -f`` deletes, ignored files included), leaving a registration that still
    points at a folder, so it stays provably gitxact's until git removes it. Symbolic links
    are removed, never followed."""
    import shutil  # here and in discard_half_made: `status` and `worktree list` import this module

    try:
        with os.scandir(path) as entries:
            names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    except FileNotFoundError:
        return
    first = True
    for name, is_dir in sorted(names):
        if name == ".git":
            continue
        target = path / name
        with contextlib.suppress(FileNotFoundError):
            if is_dir:
                shutil.rmtree(target)
            else:
                os.unlink(target)
        if first:
            crashpoint("worktree-end-emptying")
            first = False


def admin_dir_of(path: Path) -> Path | None:
    """The admin folder (``<common>/worktrees/<id>``) named by *path*'s ``.git`` file."""
    try:
        text = (path / ".git").read_text().strip()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    return Path(text.removeprefix("gitdir: "))


def worktree_id_of(path: Path) -> str | None:
    """git's id of the linked worktree at *path*, from its ``.git`` file."""
    admin = admin_dir_of(path)
    return admin.name if admin is not None else None


def is_registered(repo: Repo, path: Path) -> bool:
    """Whether git lists the worktree at *path*.

    A folder whose ``.git`` file names an existing admin folder is one git lists; only
    otherwise (a folder gone or broken) is git asked, which spares ``release`` a
    ``git worktree list`` on its common path.
    """
    admin = admin_dir_of(path)
    if admin is not None and (admin / "gitdir").is_file():
        return True
    return any(os.path.realpath(p) == os.path.realpath(path) for p in registrations(repo))


def relock(repo: Repo, path: Path, reason: str) -> None:
    repo.git(["worktree", "lock", "--reason", reason, str(path)], cwd=repo.layout.common_dir)


def remove_worktree(repo: Repo, path: Path) -> None:
    """Unlock and remove in one git call (``-f -f``): no window where it is unlocked.

    Callers have already saved every not-ignored file (or found none), which is
    what the single ``-f`` check would protect; ignored files go with the folder, as
    they do with a plain ``git worktree remove``.
    """
    repo.git(["worktree", "remove", "--force", "--force", str(path)], cwd=repo.layout.common_dir)


# -- worktrees git never finished ----------------------------------------------------------
#
# git 2.39's `worktree add --lock` makes the admin folder and its `locked` file, then the
# new folder's `.git` file, `gitdir`, a temporary HEAD of all zeros and `commondir`, and
# only then points HEAD at the branch (a child `git symbolic-ref`/`update-ref`) and checks
# the files out. Killed before HEAD is set, it leaves a worktree every git command in it
# fails on ("bad object HEAD"), that `git fsck` reports, and that `git worktree prune`
# keeps because it is locked.


def admin_dirs(repo: Repo) -> list[Path]:
    """Every worktree admin folder (``<common>/worktrees/<id>``), symlinks excluded."""
    base = repo.layout.common_dir / "worktrees"
    try:
        names = sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    found = []
    for name in names:
        path = base / name
        try:
            if stat.S_ISDIR(os.lstat(path).st_mode):
                found.append(path)
        except FileNotFoundError:
            continue
    return found


def locked_by_gitxact(admin: Path) -> bool:
    try:
        return (
            (admin / "locked").read_text(encoding="utf-8", errors="replace").startswith(lease_reader.LOCK_REASON_PREFIX)
        )
    except OSError:
        return False


def half_made(admin: Path) -> bool:
    """Whether git never finished this worktree: no ``gitdir``, or a HEAD missing or all zeros."""
    if not (admin / "gitdir").is_file():
        return True
    try:
        head = (admin / "HEAD").read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return True
    return not head or set(head) == {"0"}


def folder_of(admin: Path) -> Path | None:
    """The worktree folder an admin folder names (its ``gitdir`` is ``<folder>/.git``)."""
    try:
        gitdir = (admin / "gitdir").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return Path(gitdir).parent if gitdir.endswith("/.git") else None


def discard_half_made(repo: Repo, admin: Path, root: Path) -> str:
    """Remove a worktree git never finished: its admin folder, and its folder if that holds
    nothing but the ``.git`` file pointing back here. The caller proved both gitxact's
    (its lock reason, the folder under *root*) and holds the repository lock exclusive.
    Returns what was done."""
    base = os.path.realpath(repo.layout.common_dir / "worktrees")
    if os.path.dirname(os.path.realpath(admin)) != base or os.path.islink(admin):
        return f"left {admin}: not an admin folder of this repository"
    done = [f"removed git's half-made worktree record {admin}"]
    folder = folder_of(admin)
    if folder is not None and os.path.realpath(folder).startswith(os.path.realpath(root) + os.sep):
        try:
            entries = os.listdir(folder)
        except FileNotFoundError:
            entries = None
        if entries is not None and set(entries) <= {".git"}:
            points_to = admin_dir_of(folder)
            if entries and (points_to is None or os.path.realpath(points_to) != os.path.realpath(admin)):
                return f"left {admin} and {folder}: the folder belongs to another worktree"
            with contextlib.suppress(FileNotFoundError):
                (folder / ".git").unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()
                done.append(f"and its empty folder {folder}")
        elif entries:
            done.append(f"(its folder {folder} holds files and was kept)")
    import shutil

    shutil.rmtree(admin)
    return " ".join(done)
