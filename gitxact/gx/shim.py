"""``gitxact shim install``: a ``git`` that runs ``gx``, for the shells and tools that type ``git``.

Agents' shells, editors and libraries run ``git``, not ``gx``; a folder holding this
shim, first on their ``PATH``, gives every one of them gitxact's locks. ``gx`` finds the
real git by skipping files that carry :data:`~gitxact.git.lite.SHIM_MARK` (or takes
``GITXACT_GIT``), so the shim never calls itself, whatever the ``PATH``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from gitxact.core.documents import Document
from gitxact.errors import OperationFailedError, RefusedError
from gitxact.git import lite

TEMPLATE = """#!/bin/sh
# {mark}: git with gitxact's locks; written by `gitxact shim install`, removed by `gitxact shim uninstall`.
exec {command} "$@"
"""


class ShimResult(Document):
    path: str
    folder: str
    installed: bool
    removed: bool = False
    #: What to add to a shell's start-up file so ``git`` is the shim (empty after uninstall).
    path_line: str = ""


def default_folder() -> Path:
    """A folder gitxact owns in the user's data home (``$XDG_DATA_HOME/gitxact/bin``)."""
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "gitxact" / "bin"


def _command() -> str:
    """How to start gx from the shim: the ``gx`` script beside this Python, else this Python itself."""
    here = Path(sys.executable).parent / "gx"
    if here.is_file() and os.access(here, os.X_OK):
        return shlex.quote(str(here))
    code = "import sys; from gitxact.gx.main import main; sys.exit(main())"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def install(folder: Path | None = None) -> ShimResult:
    """Write ``FOLDER/git`` (refreshing our own shim, never replacing anything else)."""
    folder = Path(os.path.abspath(folder or default_folder()))
    target = folder / "git"
    if os.path.lexists(target) and not (target.is_file() and not target.is_symlink() and lite.is_shim(str(target))):
        raise RefusedError(
            f"{target} exists and is not gitxact's shim; it is left as it is",
            hint="choose another folder, e.g. `gitxact shim install ~/.local/share/gitxact/bin`",
        )
    text = TEMPLATE.format(mark=lite.SHIM_MARK.decode(), command=_command())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".git.tmp-{os.getpid()}"
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
        os.replace(tmp, target)
    except OSError as exc:
        raise OperationFailedError(f"cannot write {target}: {exc.strerror or exc}") from exc
    line = f'export PATH="{folder}:$PATH"'
    return ShimResult(path=str(target), folder=str(folder), installed=True, path_line=line)


def uninstall(folder: Path | None = None) -> ShimResult:
    """Remove ``FOLDER/git`` if it is gitxact's shim (anything else is left)."""
    folder = Path(os.path.abspath(folder or default_folder()))
    target = folder / "git"
    removed = False
    if target.is_file() and not target.is_symlink() and lite.is_shim(str(target)):
        target.unlink()
        removed = True
    elif os.path.lexists(target):
        raise RefusedError(f"{target} is not gitxact's shim; it is left as it is")
    return ShimResult(path=str(target), folder=str(folder), installed=False, removed=removed)
