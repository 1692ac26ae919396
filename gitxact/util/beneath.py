"""Writing a file inside a worktree, never through a symbolic link the checkout brought.

A checkout is the committer's to shape: a tracked ``conf`` may be a symlink to any folder
on the machine (git checks symlinks out as links, ``core.symlinks``). git itself never
writes beyond one (``verify_path``/``has_symlink_leading_path`` refuse such paths), but a
plain ``open(worktree / "conf/secret.env", "w")`` follows it, and would put a main
worktree's ignored secret wherever the link points. So every file gitxact writes into a
worktree goes through here: each folder of the path is opened relative to the one before
with ``O_DIRECTORY | O_NOFOLLOW`` (made if missing, ``mkdir`` relative to its parent's
descriptor), and the file itself is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so no
link, not even one swapped in between two steps, is ever followed below the worktree's
top folder. A path that meets one raises :class:`ThroughSymlinkError`, which callers
report as a skip.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class ThroughSymlinkError(OSError):
    """The destination, or a folder on its way, is a symbolic link (or no folder at all)."""

    def __init__(self, rel: str, where: str) -> None:
        super().__init__(errno.ELOOP, f"{where} is a symbolic link or not a folder; nothing written through it")
        self.rel = rel
        self.where = where


def _parts(rel: str) -> list[str]:
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if not parts or ".." in parts or os.path.isabs(rel):
        raise ValueError(f"{rel!r} is not a path inside the folder")
    return parts


def _open_parent(top: int, rel: str, parts: list[str]) -> int:
    """A descriptor of the folder that holds *rel*'s last part, each folder opened no-follow
    relative to the one before (and made when missing)."""
    fd = os.dup(top)
    try:
        for i, part in enumerate(parts[:-1]):
            with contextlib.suppress(FileExistsError):  # there already (or a link: the open refuses it)
                os.mkdir(part, 0o777, dir_fd=fd)
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ThroughSymlinkError(rel, "/".join(parts[: i + 1])) from exc
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def copy_beneath(origin: Path, root: Path, rel: str) -> None:
    """Copy the file *origin* to *rel* under the folder *root*: bytes, mode and times, a
    symlink as a symlink; missing folders on the way are made. Raises
    :class:`FileExistsError` when *rel* exists, and :class:`ThroughSymlinkError` when it is
    a link or a folder on the way is a link (or a file): never replaced, never followed.
    *root* itself may be reached through links: it is the worktree gitxact made."""
    parts = _parts(rel)
    info = os.lstat(origin)
    top = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        parent = _open_parent(top, rel, parts)
    finally:
        os.close(top)
    name = parts[-1]
    try:
        if stat.S_ISLNK(info.st_mode):
            os.symlink(os.readlink(origin), name, dir_fd=parent)
        elif stat.S_ISREG(info.st_mode):
            _copy_regular(origin, parent, name, info)
        else:
            raise ValueError(f"{origin} is not a regular file")
    except FileExistsError:
        # O_EXCL fails on a link too, dangling or not, without following it: say which it was.
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise ThroughSymlinkError(rel, rel) from None
        raise
    finally:
        os.close(parent)


def _copy_regular(origin: Path, parent: int, name: str, info: os.stat_result) -> None:
    out = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
    done = False
    try:
        source = os.open(origin, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            while chunk := os.read(source, 1 << 20):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
        finally:
            os.close(source)
        os.fchmod(out, stat.S_IMODE(info.st_mode))
        os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
        done = True
    finally:
        os.close(out)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=parent)
