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

Files are read the same way from the folder they come from (:class:`Copier`): each
folder opened no-follow (once for all the files in it), so a link swapped into the main worktree between
git's listing and the copy is never read through either. Bytes are shared rather than
copied where the filesystem can (``FICLONE``, what ``cp --reflink=auto`` does: XFS,
btrfs), so a 20,000-file cache costs each lease its inodes, not its data.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # a FIFO swapped in never blocks
#: ``FICLONE`` from ``<linux/fs.h>`` (``_IOW(0x94, 9, int)``): the destination shares the
#: source's extents, copy-on-write. Not in Python's ``fcntl`` module.
FICLONE = 0x40049409
#: errnos saying this filesystem (or this pair of files) cannot share extents: copy instead.
_NO_REFLINK = {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EPERM}


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


class Copied(NamedTuple):
    """How one file was copied: ``"reflink"`` (extents shared), ``"copy"`` (bytes written)
    or ``"symlink"`` (a link copied as a link)."""

    how: str


def copy_beneath(origin: Path, root: Path, rel: str, *, source: Path | None = None) -> Copied:
    """Copy the file *origin* to *rel* under the folder *root*: bytes, mode and times, a
    symlink as a symlink; missing folders on the way are made. Raises
    :class:`FileExistsError` when *rel* exists, and :class:`ThroughSymlinkError` when it is
    a link or a folder on the way is a link (or a file): never replaced, never followed.
    *root* itself may be reached through links: it is the worktree gitxact made.

    With *source* (the folder *origin* is ``source / rel`` of), *origin* is opened the same
    way beneath it, no link followed on the way (many files: :class:`Copier`).
    Regular files are reflinked where the filesystem shares extents, else copied.
    """
    if source is not None:
        with Copier(source, root) as copier:
            return copier.copy(rel)
    parts = _parts(rel)
    info = os.lstat(origin)
    reader = os.open(origin, _READ_FLAGS) if stat.S_ISREG(info.st_mode) else None
    try:
        with _Folders(root, make=True) as folders:
            link = os.readlink(origin) if stat.S_ISLNK(info.st_mode) else None
            return _write(folders.parent(rel, parts), parts[-1], rel, reader=reader, info=info, link=link)
    finally:
        if reader is not None:
            os.close(reader)


class Copier:
    """Copies of many files from the folder *source* to the same paths under *root*, as
    :func:`copy_beneath` makes them, each folder of both sides opened (no-follow) once for
    the files in it rather than once a file: git lists a folder's files together, so only
    the descriptors along the current path are kept open."""

    def __init__(self, source: Path, root: Path) -> None:
        self._source = _Folders(source, make=False)
        self._root = _Folders(root, make=True)

    def __enter__(self) -> Copier:
        return self

    def __exit__(self, *_: object) -> None:
        self._source.close()
        self._root.close()

    def copy(self, rel: str) -> Copied:
        """*rel* from *source* to *root*; raises as :func:`copy_beneath` does, and
        :class:`ValueError` for what is neither a file nor a link (or changed meanwhile)."""
        parts = _parts(rel)
        above = self._source.parent(rel, parts)
        return _copy_one(above, self._root.parent(rel, parts), parts[-1], rel)

    def copy_many(self, rels: Sequence[str]) -> list[tuple[str, Copied | OSError | ValueError]]:
        """Each of *rels* copied as :meth:`copy` does, and how: a :class:`Copied`, or the error
        :meth:`copy` would have raised for it (:class:`FileExistsError`, :class:`FileNotFoundError`,
        :class:`ValueError`, :class:`ThroughSymlinkError`); any other error is raised.

        A folder's files together: its two folders opened (no link followed, made once) for all
        of them, not looked up again for each file. (Threads were tried: on XFS, whose creates
        and clones serialise, 4 threads made a 20,000-file copy slower; docs/benchmark.md.)
        """
        folders: dict[str, list[str]] = {}
        for rel in rels:
            folders.setdefault(rel.rpartition("/")[0], []).append(rel)
        return [item for names in folders.values() for item in self._copy_folder(names)]

    def _copy_folder(self, names: list[str]) -> list[tuple[str, Copied | OSError | ValueError]]:
        opened = self._open_pair(names[0])
        return _copy_files(*opened, names) if isinstance(opened, tuple) else [(rel, opened) for rel in names]

    def _open_pair(self, rel: str) -> tuple[int, int] | OSError | ValueError:
        """New descriptors of the folders holding *rel* on both sides (the caller's to close),
        or why its folder's files cannot be copied."""
        try:
            parts = _parts(rel)
            source = os.dup(self._source.parent(rel, parts))
        except (FileNotFoundError, ThroughSymlinkError, ValueError) as exc:
            return exc
        try:
            return source, os.dup(self._root.parent(rel, parts))
        except BaseException as exc:
            os.close(source)
            if isinstance(exc, ThroughSymlinkError | FileNotFoundError):
                return exc
            raise


def _copy_files(source: int, target: int, rels: list[str]) -> list[tuple[str, Copied | OSError | ValueError]]:
    """Copy *rels* (all in one folder) from the folder *source* to the folder *target*, as
    :meth:`Copier.copy` does; both descriptors are closed here."""
    done: list[tuple[str, Copied | OSError | ValueError]] = []
    try:
        for rel in rels:
            name = rel.rpartition("/")[2]
            try:
                done.append((rel, _copy_one(source, target, name, rel)))
            except (FileExistsError, FileNotFoundError, ThroughSymlinkError, ValueError) as exc:
                done.append((rel, exc))
    finally:
        os.close(source)
        os.close(target)
    return done


def _copy_one(above: int, parent: int, name: str, rel: str) -> Copied:
    """The file *name* of the folder *above* into the folder *parent* (see :meth:`Copier.copy`)."""
    info = os.stat(name, dir_fd=above, follow_symlinks=False)
    if stat.S_ISLNK(info.st_mode):  # copied as the link it is
        return _write(parent, name, rel, reader=None, info=info, link=os.readlink(name, dir_fd=above))
    if not stat.S_ISREG(info.st_mode):  # never opened: a FIFO would block, a device act
        raise ValueError(f"{rel} is not a regular file")
    reader = os.open(name, _READ_FLAGS, dir_fd=above)
    try:
        opened = os.fstat(reader)
        if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
            raise ValueError(f"{rel} changed while it was copied")
        return _write(parent, name, rel, reader=reader, info=opened, link=None)
    finally:
        os.close(reader)


def _write(parent: int, name: str, rel: str, *, reader: int | None, info: os.stat_result, link: str | None) -> Copied:
    """Make *name* in the folder *parent*: the link *link*, or a copy of the open *reader*."""
    try:
        if link is not None:
            os.symlink(link, name, dir_fd=parent)
            return Copied("symlink")
        if reader is not None and stat.S_ISREG(info.st_mode):
            return Copied(_copy_regular(reader, parent, name, info))
        raise ValueError(f"{rel} is not a regular file")
    except FileExistsError:
        # O_EXCL fails on a link too, dangling or not, without following it: say which it was.
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise ThroughSymlinkError(rel, rel) from None
        raise


class _Folders:
    """Descriptors of folders under *top*, each opened with ``O_NOFOLLOW`` relative to the
    one above (made when missing, with *make*) and kept while later paths go through it.
    A folder once opened stays that folder: a link swapped in at its name later is never
    seen through this descriptor."""

    def __init__(self, top: Path, *, make: bool) -> None:
        self._make = make
        self._open: dict[str, int] = {"": os.open(top, _DIR_FLAGS & ~os.O_NOFOLLOW)}

    def __enter__(self) -> _Folders:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._open.values():
            os.close(fd)
        self._open.clear()

    def parent(self, rel: str, parts: list[str]) -> int:
        """The folder holding *rel*'s last part (owned here: not to be closed)."""
        key = "/".join(parts[:-1])
        if key in self._open:
            return self._open[key]
        for other in [k for k in self._open if k and not (key + "/").startswith(k + "/")]:
            os.close(self._open.pop(other))  # off the current path
        return self._folder(rel, parts[:-1])

    def _folder(self, rel: str, folder: list[str]) -> int:
        key = "/".join(folder)
        found = self._open.get(key)
        if found is not None:
            return found
        above = self._folder(rel, folder[:-1])
        if self._make:
            with contextlib.suppress(FileExistsError):  # there already (or a link: the open refuses it)
                os.mkdir(folder[-1], 0o777, dir_fd=above)
        try:
            fd = os.open(folder[-1], _DIR_FLAGS, dir_fd=above)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise ThroughSymlinkError(rel, key) from exc
            raise
        self._open[key] = fd
        return fd


def link_beneath(target: str, root: Path, rel: str) -> None:
    """Make *rel* under *root* a symbolic link to *target*, the folders on the way opened
    as :func:`copy_beneath` opens them; an existing *rel* is never replaced
    (:class:`FileExistsError`, or :class:`ThroughSymlinkError` for a link)."""
    parts = _parts(rel)
    with _Folders(root, make=True) as folders:
        parent = folders.parent(rel, parts)
        try:
            os.symlink(target, parts[-1], dir_fd=parent)
        except FileExistsError:
            if stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
                raise ThroughSymlinkError(rel, rel) from None
            raise


def real_folder_beneath(root: Path, rel: str) -> bool:
    """Whether *rel* under *root* is a folder reached without following any link."""
    parts = _parts(rel)
    with _Folders(root, make=False) as folders:
        try:
            folders.parent(rel, [*parts, "."])
        except (ThroughSymlinkError, FileNotFoundError):
            return False
    return True


def _copy_regular(source: int, parent: int, name: str, info: os.stat_result) -> str:
    out = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
    done = False
    try:
        how = "reflink" if _reflink(source, out) else "copy"
        if how == "copy":
            _copy_bytes(source, out, info.st_size)
        os.fchmod(out, stat.S_IMODE(info.st_mode))
        os.utime(out, ns=(info.st_atime_ns, info.st_mtime_ns))
        done = True
    finally:
        os.close(out)
        if not done:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=parent)
    return how


def _reflink(source: int, out: int) -> bool:
    """Share *source*'s extents with the empty *out*; ``False`` where the filesystem cannot."""
    import fcntl  # here: only an include copy needs it

    try:
        fcntl.ioctl(out, FICLONE, source)
    except OSError as exc:
        if exc.errno in _NO_REFLINK:
            return False
        raise
    return True


def _copy_in_kernel(copy_range: Callable[[int, int, int], int], source: int, out: int, size: int) -> bool:
    """``copy_file_range`` all of *source* into *out*; ``False`` (both rewound) where this
    pair of files does not support it, for the read/write loop to do it."""
    try:
        left = size
        while left > 0:
            sent = copy_range(source, out, left)
            if sent == 0:
                break  # the file shrank meanwhile
            left -= sent
        while copy_range(source, out, 1 << 20):  # ... or grew
            pass
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        os.lseek(source, 0, os.SEEK_SET)
        os.ftruncate(out, 0)
        os.lseek(out, 0, os.SEEK_SET)
        return False
    return True


def _copy_bytes(source: int, out: int, size: int) -> None:
    """All of *source* into *out*: ``copy_file_range`` (in the kernel, no user-space buffer;
    NFS and others copy server-side), else a read/write loop where it is not supported."""
    os.lseek(source, 0, os.SEEK_SET)
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None and _copy_in_kernel(copy_range, source, out, size):
        return
    while chunk := os.read(source, 1 << 20):
        view = memoryview(chunk)
        while view:
            view = view[os.write(out, view) :]
