"""Filesystem primitives for gitxact's state folder: no symlinks, no torn writes, git's sharing.

Kept to cheap standard modules (no pydantic, no pathlib at import) so the lock layer,
the git hooks and ``gx`` can use them: :func:`read_no_follow` is the one reader of
gitxact's own files, for the pydantic store and the lean envelope reader alike.
Start-up (str paths, not pathlib): saves over 0.1 S on gx commit and gx status (docs/benchmark.md, "Start-up tricks").

**Who may use the folder** follows the repository, as git's own files do. git applies
``core.sharedRepository`` to every folder it makes in the git directory (``path.c:
adjust_shared_perm``: group-writable, setgid so the group is kept), the git directory
itself included (``git init --shared=group`` makes it 2775). gitxact reads the setting
from there, not from ``git config``: the hooks and ``gx`` must not pay a git process for
it, and a repository whose git directory is not group-writable is not usable by a group
anyway (git's own ``index.lock`` could not be made). So each folder gitxact makes takes
its access from the folder it is made in (:func:`dir_mode_under`), and each file from
its folder (:func:`file_mode_in`): private (0700/0600) unless that folder is setgid and
group-writable, else what git gives (0660 or 0664 files, 2770 or 2775 folders).

**Names that stand in a path** (:func:`spelled`, :func:`ref_safe`): every name given to
gitxact ends up in a file or folder name and most in a ref name too (agents' folders and
branches, lock files, transactions' and savepoints' refs). The spelling is defined here,
on every lean path, so that the lock layer's names (:mod:`gitxact.locking.naming`, on
``gx status``'s path) and the checks that say what is wrong with a name
(:mod:`gitxact.util.names`) are one rule.
"""

from __future__ import annotations

import errno
import os
import stat

from gitxact.errors import StateAccessError, StateError
from gitxact.util.faults import crashpoint

TYPE_CHECKING = False  # see gitxact/__init__.py: no typing/pathlib import on the hooks' path
if TYPE_CHECKING:
    from pathlib import Path

#: The largest state file gitxact reads, and so the largest it writes: one limit for both.
MAX_STATE_BYTES = 32 * 1024 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600
#: What git gives every folder of a shared repository, and what marks one: setgid, group-writable.
_SHARED = stat.S_ISGID | stat.S_IWGRP

# Character sets, not regular expressions: this module is on gx's paths, which do not
# import re (and the enum it brings).
# start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")
#: A name's first character (ASCII only), and those that may follow it.
NAME_FIRST = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
NAME_CHARS = NAME_FIRST + ".-"


def spelled(text: str, limit: int, chars: str = NAME_CHARS) -> bool:
    """*text* is 1-*limit* characters: one of :data:`NAME_FIRST`, then any of *chars*."""
    return 1 <= len(text) <= limit and text[0] in NAME_FIRST and not text.strip(chars)


def ref_safe(name: str) -> bool:
    """No ``..``, no trailing ``.``, no ``.lock`` suffix: git refuses them in ref names."""
    return ".." not in name and not name.endswith((".lock", "."))


def shared(folder_mode: int) -> bool:
    """Whether a folder of this mode is shared the way ``core.sharedRepository`` shares git's."""
    return folder_mode & _SHARED == _SHARED


def dir_mode_under(parent_mode: int) -> int:
    """The mode of a folder gitxact makes in a folder of *parent_mode* (see the module's docstring)."""
    if not shared(parent_mode):
        return DIR_MODE
    return (parent_mode & 0o777) | DIR_MODE | stat.S_ISGID


def file_mode_in(folder_mode: int) -> int:
    """The mode of a file gitxact makes in a folder of *folder_mode*: never executable."""
    if not shared(folder_mode):
        return FILE_MODE
    return (folder_mode & 0o666) | FILE_MODE


def _unmask_group() -> int:
    """Let the umask keep group bits (never others'): a shared file or folder is then made
    with its mode at once, so another member never finds it half-made (0644, 2755) between
    the create and the ``chmod`` that git's ``adjust_shared_perm`` does after. Returns the
    umask to put back. Read by setting a stricter one first, so no moment is looser."""
    old = os.umask(0o077)
    os.umask(old & ~0o070)
    return old


def open_state_file(path: str | os.PathLike[str], flags: int, mode: int = FILE_MODE) -> int:
    """``os.open(path, flags, mode)`` for a file of gitxact's folder, with *mode* exactly
    when this call created it: the umask (022) would take a shared file's group bits away,
    so it is lifted for the group around the open, and, like git's ``adjust_shared_perm``,
    the mode is set again after it (a umask that masks more than 022)."""
    if mode == FILE_MODE:
        return os.open(path, flags, mode)
    umask = _unmask_group()
    try:
        fd = os.open(path, flags, mode)
    finally:
        os.umask(umask)
    if mode != FILE_MODE:
        try:
            info = os.fstat(fd)
            if info.st_uid == os.geteuid() and info.st_mode & 0o777 != mode:
                os.fchmod(fd, mode)
        except BaseException:
            os.close(fd)
            raise
    return fd


def ensure_private_dir(path: Path | str) -> int:
    """Create *path* if missing (its mode from its parent's, :func:`dir_mode_under`); refuse a
    symlink or non-directory in its place, and a folder this user cannot use (raising
    :class:`~gitxact.errors.StateAccessError`). Returns the mode for files made in it.

    (The name is older than shared repositories: the folder is as private as the git
    directory it lives in.)
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:
            mode = dir_mode_under(os.stat(os.path.dirname(os.fspath(path)) or ".").st_mode)
            try:
                if mode == DIR_MODE:
                    os.mkdir(path, mode)
                else:
                    umask = _unmask_group()
                    try:
                        os.mkdir(path, mode)
                    finally:
                        os.umask(umask)
                    set_mode_no_follow(path, mode)  # a umask that masks more: set again, as git does
            except FileExistsError:
                pass
            info = os.lstat(path)
        except PermissionError as exc:
            raise _unusable(path, exc) from exc
    except PermissionError as exc:  # a folder above it this user may not search
        raise _unusable(path, exc) from exc
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        from pathlib import Path  # the error path only: gx status's refresh comes here without pathlib

        if stat.S_ISLNK(info.st_mode):
            raise StateError(Path(path), "is a symbolic link; gitxact refuses to follow it", hint="remove the link")
        raise StateError(Path(path), "is not a directory", hint="move it away; gitxact keeps its state there")
    if info.st_uid != os.geteuid() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise _unusable(path, PermissionError(13, "Permission denied", os.fspath(path)))
    return file_mode_in(info.st_mode)


def set_mode_no_follow(path: str | os.PathLike[str], mode: int, *, gid: int = -1, dir_fd: int | None = None) -> bool:
    """``chmod`` (and ``chgrp`` to *gid*) the file or folder *path* if this user owns it,
    through a descriptor opened no-follow; ``False`` when it is not ours or is a link.

    In a group-writable folder another member can swap a name for a symlink between
    a check and a ``chmod(path)``, which follows it: to this user's own ``~/.ssh``, made
    group-readable. ``fchmod`` on what was opened changes only what was checked.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:  # ELOOP: a link; or gone, or unreadable
        return False
    try:
        info = os.fstat(fd)
        if info.st_uid != os.geteuid():
            return False
        if gid not in (-1, info.st_gid):
            os.fchown(fd, -1, gid)  # before the chmod: a chown clears setgid
        elif stat.S_IMODE(info.st_mode) == mode:
            return False
        os.fchmod(fd, mode)
        return True
    finally:
        os.close(fd)


def share_tree(root: str) -> int:
    """Give the folder *root* and what is in it the modes they would get if made today
    (its group too: the parent's), for what this user owns; the number changed.

    ``gitxact init`` calls it, as ``git init --shared`` on an existing repository adjusts
    its folders: a state folder made before its repository was shared, or by a gitxact
    that made everything private, becomes usable by the group. The walk holds each
    folder open (``os.fwalk``) and follows no link at any depth.
    """
    parent = os.stat(os.path.dirname(root))
    if not shared(parent.st_mode):
        return 0
    folder_mode = dir_mode_under(parent.st_mode)
    changed = int(set_mode_no_follow(root, folder_mode, gid=parent.st_gid))
    for _top, dirs, names, top_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs:
            changed += set_mode_no_follow(name, folder_mode, gid=parent.st_gid, dir_fd=top_fd)
        for name in names:
            changed += set_mode_no_follow(name, file_mode_in(folder_mode), gid=parent.st_gid, dir_fd=top_fd)
    return changed


def _unusable(path: Path | str, exc: OSError) -> StateAccessError:
    return StateAccessError.of(os.fspath(path), exc)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_no_follow(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file *path*, never through a symlink, at most *limit* of them.

    Raises :class:`OSError` when it cannot be opened (``ELOOP``: a symlink) and
    :class:`ValueError` with the reason when it is no regular file or too large.
    *limit* defaults to :data:`MAX_STATE_BYTES`, read at the call.
    """
    return read_no_follow_stat(path, limit)[0]


def read_no_follow_stat(path: str | os.PathLike[str], limit: int | None = None) -> tuple[bytes, os.stat_result]:
    """:func:`read_no_follow`, with the ``fstat`` of the very file that was read (not of
    whatever the name points at a moment later: a writer may rename a new one over it)."""
    limit = MAX_STATE_BYTES if limit is None else limit
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"is {info.st_size} bytes, over the {limit} byte limit")
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks), info
    finally:
        os.close(fd)


def read_regular_file(path: Path, limit: int | None = None) -> bytes:
    """:func:`read_no_follow` with gitxact's errors: a symlink or a bad file is a :class:`StateError`."""
    return read_regular_file_stat(path, limit)[0]


def read_regular_file_stat(path: Path, limit: int | None = None) -> tuple[bytes, os.stat_result]:
    """:func:`read_regular_file` and the ``fstat`` of the file read (see :func:`read_no_follow_stat`)."""
    try:
        return read_no_follow_stat(path, limit)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StateError(path, "is a symbolic link; gitxact refuses to follow it") from exc
        raise
    except ValueError as exc:
        raise StateError(path, str(exc)) from exc


def write_atomic(path: Path, payload: bytes, *, backup: Path | None = None, mode: int = FILE_MODE) -> None:
    """Replace *path* with *payload* atomically (a new file of *mode*, :func:`file_mode_in`
    its folder); keep the old file as *backup* first.

    On any failure (ENOSPC included) the temp file is removed and the old file is
    untouched, because nothing renames over it until the new bytes are on disk.
    """
    folder = path.parent
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise StateError(path, "is a symbolic link; gitxact refuses to write through it")
    except FileNotFoundError:
        pass
    tmp = folder / f".{path.name}.tmp-{os.urandom(6).hex()}"
    fd = open_state_file(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        crashpoint("state-before-rename")
        if backup is not None:
            # A hard link keeps the old generation under a second name without a
            # moment where the current name is missing.
            link_tmp = folder / f".{backup.name}.tmp-{os.urandom(6).hex()}"
            os.link(path, link_tmp, follow_symlinks=False)
            os.replace(link_tmp, backup)
        os.replace(tmp, path)
    except BaseException:
        try:  # noqa: SIM105
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(folder)
