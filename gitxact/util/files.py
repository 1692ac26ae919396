"""Filesystem primitives for gitxact's private folder: no symlinks, no torn writes.

Kept to cheap standard modules (no pydantic, no pathlib at import) so the lock layer,
the git hooks and ``gx`` can use them: :func:`read_no_follow` is the one reader of
gitxact's own files, for the pydantic store and the lean envelope reader alike.
"""

from __future__ import annotations

import errno
import os
import stat

from gitxact.errors import StateError
from gitxact.util.faults import crashpoint

TYPE_CHECKING = False  # see gitxact/__init__.py: no typing/pathlib import on the hooks' path
if TYPE_CHECKING:
    from pathlib import Path

#: The largest state file gitxact reads, and so the largest it writes: one limit for both.
MAX_STATE_BYTES = 32 * 1024 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600


def ensure_private_dir(path: Path | str) -> None:
    """Create *path* (0700) if missing; refuse a symlink or non-directory in its place."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        try:  # noqa: SIM105 - contextlib is not imported on gx's path
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass
        info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        from pathlib import Path  # the error path only: gx status's refresh comes here without pathlib

        if stat.S_ISLNK(info.st_mode):
            raise StateError(Path(path), "is a symbolic link; gitxact refuses to follow it", hint="remove the link")
        raise StateError(Path(path), "is not a directory", hint="move it away; gitxact keeps its state there")


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


def write_atomic(path: Path, payload: bytes, *, backup: Path | None = None) -> None:
    """Replace *path* with *payload* atomically; keep the old file as *backup* first.

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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
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
