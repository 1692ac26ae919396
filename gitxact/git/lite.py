"""The stdlib-only part of running git: what ``gx``'s fast path and the git hooks need.

:mod:`gitxact.git.run` is the module that runs git, but importing it costs subprocess and
dataclasses (measured: ~12 ms, more than half of a bare Python start-up). ``gx status``
must cost at most 1.5 Python start-ups over ``git status``, and the reference-transaction
hook runs on every ref update, so the few primitives those paths need live here and
:mod:`gitxact.git.run` re-exports them. Nothing here imports more than ``os`` at module level.

The environment marker :data:`INTERNAL_ENV` tells gitxact's own hooks that a ref change
was made by gitxact itself (``git.run`` sets it); a user's git run through ``gx`` must
never carry it, even when ``gx`` is started from a hook of such a git.
"""

from __future__ import annotations

import os

from gitxact.errors import GitMissingError
from gitxact.util.startup import child_environ

TYPE_CHECKING = False  # see gitxact/__init__.py: no typing import on the fast path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import NoReturn

#: Set (to "1") in the environment of every git gitxact runs for itself.
INTERNAL_ENV = "GITXACT_INTERNAL"
#: git's own switch: read-only commands then never take ``index.lock`` to refresh the index.
OPTIONAL_LOCKS_ENV = "GIT_OPTIONAL_LOCKS"
#: The real git to run, when the first ``git`` on ``PATH`` is gitxact's shim (or to choose another).
GIT_ENV = "GITXACT_GIT"
#: In the first lines of every shim ``gitxact shim install`` writes: how the search below skips it.
SHIM_MARK = b"gitxact-shim"

_real_git: str | None = None


def real_git() -> str:
    """The git to run: ``GITXACT_GIT``, else the first ``git`` on ``PATH`` that is not gitxact's shim.

    With the shim installed as ``git`` first on ``PATH`` (so agents' shells and tools get
    gitxact's locks), running "git" by name would run gx again, forever. Found once per process.
    """
    global _real_git  # noqa: PLW0603 - one lookup per process; gx runs git a few times at most
    if _real_git is not None:
        return _real_git
    chosen = os.environ.get(GIT_ENV)
    if not chosen:
        for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
            candidate = os.path.join(folder or ".", "git")
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK) and not is_shim(candidate):
                chosen = candidate
                break
    if not chosen:
        raise GitMissingError("git was not found on PATH", hint="install git, or point GITXACT_GIT at it")
    _real_git = chosen
    return chosen


def is_shim(path: str) -> bool:
    """Whether *path* is a shim ``gitxact shim install`` wrote (its first bytes carry the mark)."""
    try:
        with open(path, "rb") as handle:
            return SHIM_MARK in handle.read(512)
    except OSError:
        return False


def passthrough_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a user's git: the caller's own, minus gitxact's internal marker."""
    env = child_environ()
    env.pop(INTERNAL_ENV, None)
    if extra:
        env.update(extra)
    return env


def exec_git(args: Sequence[str], env: Mapping[str, str]) -> NoReturn:
    """Replace this process with git: signals, TTY, pager and exit code are then git's own."""
    try:
        os.execve(real_git(), ["git", *args], dict(env))
    except FileNotFoundError as exc:
        raise GitMissingError("git was not found on PATH", hint="install git or fix PATH") from exc


def capture(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run a read-only git query in the current directory and return (exit code, stdout).

    For ``gx``'s alias lookup, which must see the repository exactly as the user's git
    will (same cwd, same ``GIT_DIR``), so the environment is passed through as given.
    """
    import subprocess  # only when an alias must be resolved: ~6 ms the common path never pays

    try:
        proc = subprocess.run(
            [real_git(), *args], env=dict(env), capture_output=True, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError as exc:
        raise GitMissingError("git was not found on PATH", hint="install git or fix PATH") from exc
    return proc.returncode, proc.stdout.decode("utf-8", "surrogateescape")
