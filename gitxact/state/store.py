"""The atomic, checksummed, backed-up state store under ``<common-dir>/gitxact/``.

A state file is a JSON envelope around a model (a :class:`~gitxact.state.record.Record`,
the one kind of record every state file holds)::

    {"format": "gitxact-state", "kind": "tracker", "schema": 1, "generation": 7,
     "written_at": ..., "data": {...}, "checksum": "sha256:..."}

Writes follow git's own discipline (``lockfile.c``): a temp file in the same folder,
fsync, then ``rename`` over the old name, then fsync of the folder, so a reader or a
crash sees the old file or the new one, never half of one. Before the rename the
verified old file is hard-linked to ``<name>.bak``, so one good generation always
survives a bad write or a flipped byte. Loads verify the checksum and validate the
model; a bad file falls back to its backup (with a warning) or stops the command
naming the file. Callers do read-modify-write under the lock that owns the file;
this module does not lock.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Generic, TypeVar

from gitxact.errors import OperationFailedError, StateError
from gitxact.state import envelope
from gitxact.state.checksums import sealed
from gitxact.state.record import Record
from gitxact.util import console, files, jsontext
from gitxact.util.files import ensure_private_dir, read_regular_file_stat, write_atomic
from gitxact.util.value import Value

FORMAT = envelope.FORMAT
REPAIR_HINT = "run `gitxact doctor --fix` to rebuild it from git (or restore the file by hand)"


M = TypeVar("M", bound=Record)


class _Corrupt(Exception):
    """Internal: why a file failed verification."""


class Health(Value):
    """What :meth:`StateFile.check` found (used by ``status`` and ``doctor``)."""

    __slots__ = ("backup_ok", "exists", "generation", "ok", "path", "reason")

    def __init__(
        self, path: Path, *, exists: bool, ok: bool, reason: str | None, backup_ok: bool, generation: int | None
    ) -> None:
        self.path = path
        self.exists = exists
        self.ok = ok
        self.reason = reason
        self.backup_ok = backup_ok
        self.generation = generation


#: Per process, per state file (path, kind): the exact bytes of the last generation this
#: process verified there or wrote itself, their generation, and their checked ``data``
#: (``None`` until first needed after a write). A load that reads the same bytes again
#: skips the parse, the checksum over the canonical JSON and the migration (at 1,000 leases,
#: most of an acquire's hold of the repository lock; an acquire reads ``leases.json`` three
#: times); it still validates, so every load returns fresh objects of its own. The bytes are
#: compared, not the file's identity (inode, size, times): inode numbers are reused and times
#: tick coarsely, so another process's same-sized write in the same tick could look unchanged.
_KNOWN: dict[tuple[str, str], tuple[bytes, int, dict[str, Any] | None]] = {}


class StateFile(Generic[M]):
    """One state file of one model type."""

    def __init__(self, path: Path, model: type[M]) -> None:
        self.path = path
        self.model = model
        self.backup = path.with_name(path.name + ".bak")
        #: The identity of the last good generation of :attr:`path` this object read, and its
        #: number (see :meth:`save`).
        self._verified: tuple[tuple[int, ...], int] | None = None

    # -- reading -------------------------------------------------------------------------

    def _decode(self, path: Path) -> tuple[M, int]:
        try:
            raw, info = read_regular_file_stat(path)
        except StateError as exc:
            raise _Corrupt(exc.reason) from exc
        except FileNotFoundError as exc:
            raise _Corrupt("does not exist") from exc
        key = (str(path), self.model.KIND)
        known = _KNOWN.get(key)
        if known is not None and known[0] == raw:
            generation, data = known[1], known[2]
            if data is None:  # bytes this process wrote: good by construction, parsed once now
                data = jsontext.loads(raw)["data"]
        else:
            generation, data = self._open(raw)
        try:
            value: M = self.model.model_validate(data)
        except ValueError as exc:  # the record's FieldError, naming the field
            raise _Corrupt(f"does not validate: {exc}") from exc
        _KNOWN[key] = (raw, generation, data)
        if path == self.path:
            self._verified = (_identity(info), generation)
        return value, generation

    def _open(self, raw: bytes) -> tuple[int, dict[str, Any]]:
        """The generation and (migrated) data of *raw*, whose envelope and header are checked."""
        try:
            wrapped = envelope.open_envelope(raw, self.model.KIND)
        except envelope.Corrupt as exc:
            raise _Corrupt(str(exc)) from exc
        schema = wrapped.get("schema")
        generation = wrapped.get("generation")
        data = wrapped.get("data")
        if not isinstance(schema, int) or not isinstance(generation, int) or not isinstance(data, dict):
            raise _Corrupt("has a malformed header")
        if schema > self.model.SCHEMA:
            raise _Corrupt(f"was written by a newer gitxact (schema {schema} > {self.model.SCHEMA})")
        if schema < self.model.SCHEMA:
            try:
                data = self.model.migrate(schema, data)
            except ValueError as exc:
                raise _Corrupt(f"does not validate: {exc}") from exc
        return generation, data

    def _exists(self, path: Path) -> bool:
        try:
            os.lstat(path)
        except FileNotFoundError:
            return False
        return True

    def load(self, *, repair: bool = False) -> M:
        """The current value (a fresh default when the file was never written).

        A corrupt or missing-but-backed-up file falls back to ``.bak`` with a warning;
        with ``repair`` (the caller holds the owning lock) the good generation is also
        written back. With no good generation the command stops (exit 1) naming the file.
        """
        value, _ = self.load_with_generation(repair=repair)
        return value

    def load_with_generation(self, *, repair: bool = False) -> tuple[M, int]:
        if not self._exists(self.path):
            if not self._exists(self.backup):
                return self.model(), 0
            problem = "is missing but its backup exists"
        else:
            try:
                return self._decode(self.path)
            except _Corrupt as exc:
                problem = str(exc)
        try:
            value, generation = self._decode(self.backup)
        except _Corrupt as exc:
            backup_problem = str(exc) if self._exists(self.backup) else "does not exist"
            raise StateError(
                self.path,
                f"{problem}; its backup {self.backup.name} {backup_problem}",
                hint=REPAIR_HINT,
            ) from None
        console.warn(f"{self.path} {problem}; using its backup {self.backup.name} (generation {generation})")
        if repair:
            self.quarantine()
            self._write(value, generation + 1, keep_backup=False)
            console.warn(f"{self.path} restored from {self.backup.name}")
        return value, generation

    def check(self) -> Health:
        """Verify both generations without changing anything."""
        exists = self._exists(self.path)
        reason: str | None = None
        generation: int | None = None
        ok = True
        if exists:
            try:
                _, generation = self._decode(self.path)
            except _Corrupt as exc:
                ok, reason = False, str(exc)
        elif self._exists(self.backup):
            ok, reason = False, "is missing but its backup exists"
        backup_ok = False
        if self._exists(self.backup):
            try:
                self._decode(self.backup)
                backup_ok = True
            except _Corrupt:
                backup_ok = False
        return Health(self.path, exists=exists, ok=ok, reason=reason, backup_ok=backup_ok, generation=generation)

    # -- writing -------------------------------------------------------------------------

    def save(self, value: M) -> None:
        """Write *value* as the next generation, keeping the current good one as backup."""
        previous = 0
        keep = False
        try:
            current: tuple[int, ...] | None = _identity(os.lstat(self.path))
        except FileNotFoundError:
            current = None
        if current is not None and self._verified is not None and self._verified[0] == current:
            # The very file this object verified (usually by the load of this read-modify-write,
            # under the same lock): every write is a new inode renamed into place, and an edit in
            # place changes its size or times, so it needs no second parse, checksum and
            # validation (each grows with the leases, inside the repository lock's hold).
            previous, keep = self._verified[1], True
        elif current is not None:
            try:
                _, previous = self._decode(self.path)
                keep = True
            except _Corrupt:
                # Never let a damaged file displace the good backup.
                with contextlib.suppress(_Corrupt):
                    _, previous = self._decode(self.backup)
        self._write(value, previous + 1, keep_backup=keep)

    def _write(self, value: M, generation: int, *, keep_backup: bool) -> None:
        body: dict[str, Any] = {
            "format": FORMAT,
            "kind": self.model.KIND,
            "schema": self.model.SCHEMA,
            "generation": generation,
            "written_at": round(time.time(), 3),
            "data": value.model_dump(mode="json"),
        }
        # Compact, as the checksum's canonical form is: any ``indent`` sends json.dumps to its
        # pure-Python encoder, which at 100 leases made each leases.json save a large part of
        # the repository lock's hold (issue 14). ``python -m json.tool FILE`` shows it to people.
        payload = sealed(body) + b"\n"
        if len(payload) > files.MAX_STATE_BYTES:
            # A file over the limit could not be read back: the next read would fall back
            # to the backup and lose this write after it was acknowledged. Refuse it now.
            raise OperationFailedError(
                f"{self.path.name} would be {len(payload)} bytes, over the {files.MAX_STATE_BYTES} byte limit; "
                "nothing was written",
                hint="store large data elsewhere and keep a reference (a path, a ref) in gitxact's state",
            )
        mode = ensure_private_dir(self.path.parent)
        key = (str(self.path), self.model.KIND)
        _KNOWN.pop(key, None)  # whatever happens next, the file is no longer what was known
        try:
            write_atomic(self.path, payload, backup=self.backup if keep_backup else None, mode=mode)
            # Its data is parsed from these bytes when first loaded, never taken from *value*,
            # whose lists its caller may still change.
            _KNOWN[key] = (payload, generation, None)
        except StateError:
            raise
        except OSError as exc:
            raise StateError(
                self.path,
                f"could not be written ({exc.strerror or exc}); the previous state is kept",
                hint="free disk space or fix permissions, then retry",
            ) from exc

    def quarantine(self) -> Path | None:
        """Keep a damaged file for inspection before it is replaced (only the newest is kept)."""
        if not self._exists(self.path):
            return None
        target = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time() * 1000)}")
        try:
            os.replace(self.path, target)
        except OSError:
            return None
        olds = sorted(self.path.parent.glob(f"{self.path.name}.corrupt-*"))
        for old in olds[:-1]:
            with contextlib.suppress(OSError):
                old.unlink()
        return target

    def remove(self) -> None:
        _KNOWN.pop((str(self.path), self.model.KIND), None)  # a long-lived process forgets ended journals
        for path in (self.path, self.backup):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def _identity(info: os.stat_result) -> tuple[int, ...]:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


class StateStore:
    """The folder ``<common-dir>/gitxact`` and the files in it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self, *subdirs: str) -> Path:
        ensure_private_dir(self.root)
        for sub in subdirs:
            current = self.root
            for part in Path(sub).parts:
                current = current / part
                ensure_private_dir(current)
        return self.root

    def share(self) -> int:
        """Share the folder as its repository is shared (:func:`gitxact.util.files.share_tree`)."""
        return files.share_tree(str(self.root))

    def file(self, name: str, model: type[M], *, subdir: str | None = None) -> StateFile[M]:
        folder = self.root if subdir is None else self.root / subdir
        return StateFile(folder / name, model)

    @property
    def exists(self) -> bool:
        return self.root.is_dir() and not self.root.is_symlink()
