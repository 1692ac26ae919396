"""The trash of released worktrees: their files renamed away at once, deleted afterwards.

Deleting a 100,000-file checkout takes as long as writing it, and a release used to do it
while the agent waited. Now the release, once the work is saved (a snapshot ref) and the
record says ``removing``, renames each entry of the worktree but its ``.git`` file into
``<worktree root>/.gitxact-trash/<agent>-<lease>/files/`` (one ``rename`` per top-level
entry: atomic, and the same filesystem as the worktree), so the folder is as empty as the
old deletion left it and the rest of the teardown is unchanged. Once the lease is gone the
entry is deleted by a detached process (:func:`delete_later`), so the release returns
without waiting; a process killed before that is finished by the next reap (:func:`purge`).

Nothing else is ever deleted here (a forged or hand-made folder in the trash stays):

* the trash folder must be a real folder (no symbolic link) of this user, writable by
  nobody else, so no one else can place an entry in it;
* an entry must be a real folder holding the mark, a regular file of this user written
  before the first rename, naming the lease's token hash; an entry whose lease record
  still exists is left to that release (it may still be renaming into it);
* the mark goes last (the files first, then the mark, then the empty folder), so an
  entry cut short while deleting is still marked for the next reap.

A name that cannot be renamed (another filesystem mounted in the worktree, ``EXDEV``) is
deleted in place, as before; a trash folder that fails the checks makes the release
delete everything in place.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.util.faults import crashpoint

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

TRASH = ".gitxact-trash"  # agent names never start with a dot: no worktree can be called so
MARK = "gitxact-trash-mark"
FILES = "files"
_MARK_PREFIX = "gitxact-trash "


def trash_root(worktree_root: Path) -> Path:
    return worktree_root / TRASH


def _private_dir(path: Path) -> bool:
    """A real folder of this user (or root's) that no one else can write into."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid in (os.getuid(), 0) and not info.st_mode & 0o022


def _mark_of(entry: Path) -> str | None:
    """The token hash an entry's mark names, or ``None`` when the entry is not provably ours."""
    if not _private_dir(entry.parent):
        return None
    try:
        info = os.lstat(entry)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid not in (os.getuid(), 0):
            return None
        mark = entry / MARK
        mark_info = os.lstat(mark)
        if not stat.S_ISREG(mark_info.st_mode) or mark_info.st_uid not in (os.getuid(), 0):
            return None
        text = mark.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    if not text.startswith(_MARK_PREFIX):
        return None
    return text.removeprefix(_MARK_PREFIX).strip() or None


def move_in(worktree_root: Path, folder: Path, agent: str, token_hash: str) -> Path | None:
    """Rename everything in the worktree *folder* but ``.git`` into a marked trash entry.

    The caller holds the worktree's lock, has saved its work and recorded ``removing``.
    Returns the entry (for :func:`delete_later`), or ``None`` when the trash cannot be
    used; what could not be renamed is deleted in place either way, so the folder is left
    holding only its ``.git`` file.
    """
    from gitxact.worktrees import registration

    entry = _entry_for(worktree_root, agent, token_hash)
    if entry is None:
        registration.empty_folder(folder)
        return None
    files = entry / FILES
    try:
        with os.scandir(folder) as listing:
            names = sorted(item.name for item in listing if item.name != ".git")
    except FileNotFoundError:
        names = []
    for number, name in enumerate(names):
        try:
            os.rename(folder / name, files / name)
        except FileNotFoundError:
            continue
        except OSError:
            _delete_in_place(folder / name)  # another filesystem (EXDEV), or taken: as before
        if number == 0:
            crashpoint("worktree-end-emptying")  # half moved: what a crash while deleting left
    crashpoint("worktree-end-trashed")
    return entry


def _entry_for(worktree_root: Path, agent: str, token_hash: str) -> Path | None:
    """A marked, empty trash entry for this lease (a retry of its release reuses its own)."""
    root = trash_root(worktree_root)
    entry = entry_of(worktree_root, agent, token_hash)
    made = False
    for _ in range(3):  # another release's deleter may remove the trash folder it found empty
        with contextlib.suppress(FileExistsError, FileNotFoundError):
            os.mkdir(root, 0o700)
        if not _private_dir(root):
            return None
        try:
            os.mkdir(entry, 0o700)
        except FileExistsError:
            if _mark_of(entry) != token_hash:
                return None
            break
        except FileNotFoundError:
            continue
        except OSError:
            return None
        else:
            made = True
            break
    else:
        return None
    if made:
        try:
            fd = os.open(entry / MARK, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(f"{_MARK_PREFIX}{token_hash}\n")
        except OSError:
            with contextlib.suppress(OSError):
                os.rmdir(entry)
            return None
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(entry / FILES, 0o700)
        return entry if stat.S_ISDIR(os.lstat(entry / FILES).st_mode) else None
    except OSError:
        return None


def _delete_in_place(path: Path) -> None:
    import shutil

    with contextlib.suppress(FileNotFoundError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)


def delete(entry: Path, *, live: Iterable[str] = ()) -> bool:
    """Delete the trash *entry* if it is provably ours and its lease is not in *live*
    (token hashes of the lease records that exist). Returns whether it is gone."""
    import shutil

    token_hash = _mark_of(entry)
    if token_hash is None:
        # Not ours, or a release killed before it wrote the mark: only an empty folder goes.
        with contextlib.suppress(OSError):
            os.rmdir(entry)
        return not os.path.lexists(entry)
    if token_hash in set(live):
        return False
    # shutil.rmtree never follows a symbolic link (on Linux it works through folder fds).
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(entry / FILES)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(entry / MARK)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(entry)
    with contextlib.suppress(OSError):
        os.rmdir(entry.parent)  # only if empty: no trash folder is left once nothing is in it
    return True


def entry_of(worktree_root: Path, agent: str, token_hash: str) -> Path:
    """Where :func:`move_in` puts the files of the lease (*agent*, *token_hash*)."""
    return trash_root(worktree_root) / f"{agent}-{token_hash[:16]}"


def purge(worktree_root: Path, live_hashes: Callable[[], Iterable[str]]) -> list[str]:
    """Delete every trash entry of ours whose lease is gone (what reap finishes); returns their names.

    *live_hashes* gives the token hashes of the lease records, read after the entries are
    listed: an entry is made only once its lease's record says ``removing``, and that
    record is dropped only after the last rename into it, so an entry listed whose record
    is gone then is complete.
    """
    found = entries(worktree_root)
    if not found:
        return []
    live = set(live_hashes())
    return [entry.name for entry in found if delete(entry, live=live) and not os.path.lexists(entry)]


def entries(worktree_root: Path) -> list[Path]:
    root = trash_root(worktree_root)
    if not _private_dir(root):
        return []
    with os.scandir(root) as listing:
        return sorted(root / item.name for item in listing)


def delete_later(entry: Path) -> None:
    """Delete *entry* from a detached process (``python -m gitxact.worktrees.trash``), so
    the release returns now; it checks the mark itself. A shell starts it in the
    background and exits at once, so no child of ours is left to reap."""
    # From /: the caller's folder may be the worktree just released (or an agent's checkout,
    # whose files `-m` would otherwise put first on the import path).
    script = 'cd / && "$0" -m gitxact.worktrees.trash "$1" </dev/null >/dev/null 2>&1 &'
    argv = ["/bin/sh", "-c", script, sys.executable, str(entry)]
    try:
        pid = os.posix_spawn("/bin/sh", argv, os.environ, setsid=True)
        os.waitpid(pid, 0)
    except OSError:
        delete(entry)  # no shell to start it: delete here, the release waits


def main(argv: list[str]) -> int:
    """The detached deleter: ``python -m gitxact.worktrees.trash ENTRY``."""
    if len(argv) != 1:
        return 2
    delete(Path(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
