"""Lock files git (or gitxact) left behind when killed, and proving they may be removed.

A SIGKILLed ``git`` leaves ``index.lock`` (or ``HEAD.lock``, ``refs/heads/x.lock``,
``packed-refs.lock``) and every later git command in that worktree fails with "File
exists". git records no owner in these files, so whether the owner is dead has to be
reasoned out. ``recover`` removes one only when all of these hold:

1. ``recover`` holds the **whole repository** (its lock and every worktree's), so no
   gitxact command and no ``gx``-wrapped git is running in any worktree of this
   repository (each holds its worktree's lock while it runs git);
2. **no live process on this host has the file open** (``/proc/*/fd``): git keeps the
   lock file open while it writes it;
3. **no live git process on this host works in this repository** (``/proc/*/comm`` is
   ``git``/``git-*`` and ``/proc/*/cwd`` is inside one of its worktrees or its git
   dir): git changes into the worktree before taking any of these locks, so a raw git
   that could still commit or rename its lock is found here even between closing the
   file and renaming it.

A git process we cannot inspect (another security context) that runs as the lock
file's owner, or a system without ``/proc``, means nothing can be proven: the file is
kept and reported (fail closed). Other processes we cannot inspect are not counted:
only git (and gitxact, excluded by the lock) takes these locks, and a git is named git.
``gx`` applies the same rules to its own worktree's ``index.lock`` before it runs git
(:func:`clear_stale_index_lock`), so one killed git does not stop a shared worktree's
other writers until someone runs ``recover``.
``gitxact-index-*`` files are gitxact's own private indexes (snapshots, tdd trees),
created only under the worktree lock; the same rules apply to them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.git import run as git
from gitxact.git import started
from gitxact.util.value import Value

if TYPE_CHECKING:
    from collections.abc import Iterator

PROC = Path("/proc")
_GIT_DIR_LOCKS = ("index.lock", "HEAD.lock", "ORIG_HEAD.lock")


class Proc(Value):
    """A process as /proc shows it; ``cwd``/``open_files`` are ``None`` when not readable."""

    __slots__ = ("comm", "cwd", "open_files", "pid", "uid")

    def __init__(self, pid: int, uid: int, comm: str, cwd: str | None, open_files: frozenset[str] | None) -> None:
        self.pid = pid
        self.uid = uid
        self.comm = comm
        self.cwd = cwd
        self.open_files = open_files


def git_dirs(common_dir: Path) -> list[Path]:
    """The main git dir and every linked worktree's (``<common>/worktrees/<id>``)."""
    found = [common_dir]
    with contextlib.suppress(FileNotFoundError):
        found.extend(sorted(p for p in (common_dir / "worktrees").iterdir() if p.is_dir() and not p.is_symlink()))
    return found


def candidates(common_dir: Path) -> list[Path]:
    """Lock files (and gitxact temp indexes) that exist now."""
    found: list[Path] = []
    for git_dir in git_dirs(common_dir):
        found.extend(git_dir / name for name in _GIT_DIR_LOCKS if (git_dir / name).exists())
        found.extend(sorted(git_dir.glob("gitxact-index-*")))
        refs_dir = git_dir / "refs"
        if refs_dir.is_dir():
            for folder, _dirs, files in os.walk(refs_dir):
                found.extend(Path(folder) / name for name in sorted(files) if name.endswith(".lock"))
    if (common_dir / "packed-refs.lock").exists():
        found.append(common_dir / "packed-refs.lock")
    return found


def repository_roots(common_dir: Path) -> list[str]:
    """Folders a git working on this repository would have as its cwd."""
    roots = {os.path.realpath(d) for d in git_dirs(common_dir)}
    for entry in git.list_worktrees(common_dir):
        roots.add(os.path.realpath(entry.path))
    return sorted(roots)


def processes() -> Iterator[Proc]:
    """Live processes on this host (zombies, vanished ones and this process excluded).

    A process that exits while it is being read is skipped (it owns nothing any more);
    one that cannot be read for lack of permission is reported with ``None`` fields, so
    the caller fails closed.
    """
    me = os.getpid()
    for entry in os.listdir(PROC):
        if not entry.isdigit() or int(entry) == me:
            continue
        base = PROC / entry
        try:
            stat = (base / "stat").read_bytes()
            uid = os.stat(base).st_uid
            comm = (base / "comm").read_text().strip()
        except OSError:
            continue  # gone meanwhile
        tail = stat[stat.rfind(b")") + 1 :].split()
        if tail and tail[0] in (b"Z", b"X"):
            continue
        try:
            yield Proc(int(entry), uid, comm, _cwd_of(base), _open_files(base))
        except FileNotFoundError:
            continue


def _cwd_of(base: Path) -> str | None:
    try:
        return os.readlink(base / "cwd")
    except PermissionError:
        return None


def _open_files(base: Path) -> frozenset[str] | None:
    """Targets of the process's open descriptors; None if any cannot be read (no permission)."""
    links = set()
    try:
        for fd in os.listdir(base / "fd"):
            with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                links.add(os.readlink(base / "fd" / fd))
    except PermissionError:
        return None
    return frozenset(links)


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def holders(paths: list[Path], roots: list[str]) -> dict[Path, str]:
    """For each path that may still be in use, why (paths not listed are provably orphaned)."""
    if not PROC.is_dir():
        return dict.fromkeys(paths, "no /proc on this system: the owner cannot be proven dead")
    owners: dict[Path, int] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            owners[path] = os.lstat(path).st_uid
    real = {path: os.path.realpath(path) for path in paths}
    reasons: dict[Path, str] = {}
    for proc in processes():
        is_git = proc.comm == "git" or proc.comm.startswith("git-")
        if is_git and proc.cwd is not None and _inside(proc.cwd, roots):
            return dict.fromkeys(paths, f"git (pid {proc.pid}) is running in this repository")
        hidden = proc.open_files is None or proc.cwd is None
        for path in paths:
            if path in reasons:
                continue
            if hidden and is_git and owners.get(path) in (proc.uid, None):
                reasons[path] = f"git (pid {proc.pid}) cannot be inspected"
            elif proc.open_files is not None and real[path] in proc.open_files:
                reasons[path] = f"pid {proc.pid} ({proc.comm}) has it open"
    return reasons


# -- the gits gitxact starts ----------------------------------------------------------------
#
def clear_stale_index_lock(git_dir: Path, worktree: Path | None, record: str) -> str | None:
    """Remove this worktree's ``index.lock`` if gitxact's own killed git left it; say so (else None).

    For ``gx``, which calls this holding the worktree's lock exclusive: no gitxact
    command and no ``gx``-wrapped git works in this worktree meanwhile. The file goes
    only when all of these hold: *record* names a git that ``gx`` started here and that
    is provably dead; nobody has the file open and no git runs with its cwd in this
    worktree or its git dir (rules 2 and 3 above); and it is still the same file after
    that look (a git that started meanwhile cannot have made it: it exists). Otherwise
    it is kept and git reports it as git does.
    """
    dead = started.read(record)
    if dead is None or not dead.is_dead():
        return None
    if not os.path.lexists(git_dir / "index.lock"):
        started.forget(record)  # that git ended without leaving its lock
        return None
    if not remove_orphaned_index_lock(git_dir, worktree):
        return None
    started.forget(record)
    return f"removed {git_dir / 'index.lock'}: gitxact's own git (pid {dead.pid}) was killed and left it"


def remove_orphaned_index_lock(git_dir: Path, worktree: Path | None) -> bool:
    """Remove ``<git_dir>/index.lock`` if nobody has it open and no git works in the worktree.

    The caller holds the worktree's lock (no gitxact command works there) and knows the
    file is gitxact's to remove: a killed ``gx``'s git left it, or the worktree is a lease
    of gitxact's whose owner died and which is being ended. The same file must still be
    there after the look at the processes: a git that started meanwhile cannot have made
    it (it existed), and one that ended meanwhile removed or renamed it.
    """
    path = git_dir / "index.lock"
    try:
        before = os.lstat(path)
    except FileNotFoundError:
        return False
    roots = [os.path.realpath(git_dir)] + ([os.path.realpath(worktree)] if worktree is not None else [])
    if holders([path], roots):
        return False
    try:
        after = os.lstat(path)
    except FileNotFoundError:
        return False
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        return True
    return False
