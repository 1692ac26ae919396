"""Installing gitxact's native git hooks, chaining whatever hook was there before.

``gitxact hooks install`` writes ``pre-commit``, ``pre-auto-gc`` and
``reference-transaction`` into the folder git runs hooks from (the common
``hooks/`` folder, shared by every worktree, or ``core.hooksPath`` if set). Each is a
small shell script rendered from ``hook-tmpl`` beside this module (the pre-commit framework's
model): it exits at once when there is nothing to protect, else runs
:mod:`gitxact.hooks.policy` with the absolute interpreter of the gitxact that installed it
(falling back to ``gitxact`` on PATH), then the previous hook.

A hook that was already there is kept as ``NAME.gitxact-chained`` and run after
gitxact's check, with the same arguments and stdin; its exit code is respected.
Installing again only refreshes gitxact's scripts; ``uninstall`` puts the originals
back. Hooks that are not gitxact's are never overwritten or deleted.

The pre-commit framework's hook is the exception to chaining: gitxact's hook goes
beneath it, as ``NAME.legacy``, the slot the framework runs first and restores when it
is uninstalled (:mod:`gitxact.hooks.framework` says why, and how the check then runs
once per commit).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from pydantic import BaseModel

from gitxact.core.documents import Document
from gitxact.core.repo import Repo
from gitxact.errors import OperationFailedError
from gitxact.hooks.framework import LEGACY_SUFFIX, MARKER, is_framework_hook
from gitxact.hooks.policy import HOOKS

CHAIN_SUFFIX = ".gitxact-chained"
TEMPLATE = Path(__file__).parent / "hook-tmpl"
#: The folder holding the ``gitxact`` package, which the hook puts on ``sys.path``.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


class HookReport(BaseModel):
    name: str
    path: str
    #: installed | chained | updated | unchanged | restored | removed | absent | foreign;
    #: ``... under pre-commit`` when gitxact's hook is the pre-commit framework's ``NAME.legacy``.
    action: str
    chained: str | None = None


class HooksResult(Document):
    hooks_dir: str
    hooks: list[HookReport]


def hooks_dir(repo: Repo) -> Path:
    """Where git looks for hooks: ``core.hooksPath`` if set, else the common ``hooks/``."""
    out = repo.git(["rev-parse", "--path-format=absolute", "--git-path", "hooks"], read_only=True).stdout
    return Path(out.strip())


def render(name: str) -> str:
    """The script for hook *name*, with this interpreter and this gitxact baked in."""
    python = sys.executable if os.path.isabs(sys.executable) else os.path.abspath(sys.executable)
    root = str(PACKAGE_ROOT)
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in (("@HOOK@", name), ("@PYTHON@", python), ("@ROOT@", root)):
        text = text.replace(key, value.replace("'", "'\\''"))
    return text


def is_ours(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return MARKER.encode() in handle.read(4096)
    except OSError:
        return False


def install(repo: Repo) -> HooksResult:
    """Install (or refresh) gitxact's hooks; idempotent."""
    folder = hooks_dir(repo)
    reports: list[HookReport] = []
    with repo.locks.resource("hooks"):
        folder.mkdir(parents=True, exist_ok=True)
        for name in HOOKS:
            path, chained = folder / name, folder / (name + CHAIN_SUFFIX)
            under = _framework_slot(folder, name)
            target = path if under is None else under
            text = render(name)
            if is_ours(target):
                action = "unchanged" if target.read_text(encoding="utf-8") == text else "updated"
            elif os.path.lexists(target):
                if os.path.lexists(chained):
                    raise OperationFailedError(
                        f"{target} is not gitxact's, and {chained.name} already holds a chained hook",
                        hint="merge or move one of them away, then run `gitxact hooks install` again",
                    )
                os.rename(target, chained)
                action = "chained"
            else:
                action = "installed"
            if action != "unchanged":
                _write_executable(target, text)
            if under is not None:
                action += " under pre-commit"
            kept = str(chained) if os.path.lexists(chained) else None
            reports.append(HookReport(name=name, path=str(target), action=action, chained=kept))
    return HooksResult(hooks_dir=str(folder), hooks=reports)


def _framework_slot(folder: Path, name: str) -> Path | None:
    """``NAME.legacy`` when the pre-commit framework's script is hook *name*, else ``None``.

    A layout an earlier gitxact made (gitxact's hook on top, the framework's chained under
    it) is turned into the framework's own first: its script back to *name*, ours beneath.
    """
    path, chained, legacy = folder / name, folder / (name + CHAIN_SUFFIX), folder / (name + LEGACY_SUFFIX)
    if is_ours(path) and is_framework_hook(str(chained)) and not os.path.lexists(legacy):
        os.replace(path, legacy)
        os.replace(chained, path)
    return legacy if is_framework_hook(str(path)) else None


def uninstall(repo: Repo) -> HooksResult:
    """Remove gitxact's hooks and put the chained originals back (beneath the framework's, if there)."""
    folder = hooks_dir(repo)
    reports: list[HookReport] = []
    with repo.locks.resource("hooks"):
        for name in HOOKS:
            path, chained, legacy = folder / name, folder / (name + CHAIN_SUFFIX), folder / (name + LEGACY_SUFFIX)
            if is_ours(legacy):
                path = legacy  # beneath the pre-commit framework's hook, which runs what is left there
            if os.path.lexists(path) and not is_ours(path):
                action = "foreign"
            elif os.path.lexists(chained):
                os.replace(chained, path)
                action = "restored"
            elif os.path.lexists(path):
                path.unlink()
                action = "removed"
            else:
                action = "absent"
            reports.append(HookReport(name=name, path=str(path), action=action))
    return HooksResult(hooks_dir=str(folder), hooks=reports)


def _write_executable(path: Path, text: str) -> None:
    """Replace *path* atomically: git may be running this very hook right now."""
    tmp = path.with_name(f".{path.name}.gitxact-tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o755)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o755)  # noqa: S103 - hooks must be executable; the umask may have taken bits away
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
