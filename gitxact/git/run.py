"""The one place gitxact runs git for itself, and reads what it answers.

Every git process gitxact starts for its own work goes through :func:`run`: argv lists,
never a shell, an explicit working directory, output captured, and an environment in which
inherited repository-locating variables cannot point the child at the wrong repository.
Git sets ``GIT_DIR``/``GIT_INDEX_FILE`` (sometimes relative) when it runs hooks; a hook that
then runs git in *another* worktree with those variables would act on the caller's index.
So they are made absolute once at start-up (for discovery, which must honour them like
git does) and dropped for every child that is located by its ``cwd``.

Built on the lean core's git, :mod:`gitxact.git.lite`: which git to run, the user's
environment, the internal marker (the children of :func:`run` carry it, so gitxact's own
hooks can tell gitxact's ref changes from a user's; a user's git never does), what a git
that could not start means, and the tied child of ``gx``'s locked path. Those are defined
there only and imported from there, by this module and by its callers alike; this one
adds what needs ``subprocess``, ``pathlib`` and the value records (:class:`GitResult`,
:class:`RepoLayout`, the worktree list).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError, NotARepositoryError
from gitxact.git import lite
from gitxact.util.startup import child_environ
from gitxact.util.value import Value

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Variables that tell git which repository, worktree or index to use. Inherited from a
#: hook or a wrapper they would override ``cwd``-based discovery in every child: those that
#: move discovery (:data:`gitxact.git.lite.LOCATING_VARS`), and the two a child located
#: by its ``cwd`` must not see either (a hook's relative prefix, a ceiling on discovery).
REPO_LOCATING_VARS = (*lite.LOCATING_VARS, "GIT_PREFIX", "GIT_CEILING_DIRECTORIES")
_PATH_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR", "GIT_OBJECT_DIRECTORY")


def absolutize_inherited_env(environ: dict[str, str] | None = None) -> None:
    """Make inherited relative ``GIT_*`` paths absolute against the start-up directory.

    Git may export ``GIT_DIR=.git`` to a hook; once gitxact runs a child with another
    ``cwd`` that relative path would name a different folder (or none).
    """
    env = os.environ if environ is None else environ
    try:
        cwd = os.getcwd()
    except FileNotFoundError:  # the current folder was deleted: nothing relative can be resolved
        return
    for name in _PATH_VARS:
        value = env.get(name)
        if value and not os.path.isabs(value):
            env[name] = os.path.normpath(os.path.join(cwd, value))


def _drop_locating(env: dict[str, str]) -> dict[str, str]:
    for name in REPO_LOCATING_VARS:
        env.pop(name, None)
    return env


def child_env(
    extra: Mapping[str, str] | None = None, *, keep_repo_env: bool = False, internal: bool = False
) -> dict[str, str]:
    """The environment of a child gitxact starts: inherited, minus repository-locating
    variables, never prompting; with ``internal=True`` (only :func:`run`'s own gits) carrying
    the internal marker. Without it by default: a user's command (a lease's setup, a check)
    must never carry the marker, or the gits it runs would pass gitxact's hooks unjudged."""
    env = child_environ() if keep_repo_env else _drop_locating(child_environ())
    # Never let a git we run for ourselves stop to ask for a password or an editor.
    env.setdefault("GIT_TERMINAL_PROMPT", "0")
    if extra:
        env.update(extra)
    # Our hooks let gitxact's own ref changes through (refs/gitxact/* deletions, leased branches).
    if internal:
        env[lite.INTERNAL_ENV] = "1"
    else:
        env.pop(lite.INTERNAL_ENV, None)
    return env


class GitResult(Value):
    """What a git command printed and returned."""

    __slots__ = ("argv", "returncode", "stderr", "stdout")

    def __init__(self, *, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def lines(self) -> list[str]:
        return [line for line in self.stdout.splitlines() if line]

    def zfields(self) -> list[str]:
        """Split ``-z`` output; the trailing NUL yields no empty last field."""
        parts = self.stdout.split("\0")
        if parts and parts[-1] == "":
            parts.pop()
        return parts


def run(
    args: Sequence[str],
    cwd: Path | str,
    *,
    check: bool = True,
    input: str | bytes | None = None,
    env: Mapping[str, str] | None = None,
    keep_repo_env: bool = False,
    read_only: bool = False,
    timeout: float | None = None,
    internal: bool = True,
) -> GitResult:
    """Run ``git ARGS`` in *cwd* and capture its output.

    ``read_only`` sets ``GIT_OPTIONAL_LOCKS=0`` so a query never refreshes the index
    under a writer's ``index.lock``. ``check`` raises :class:`GitError` on failure.
    ``internal=False``: the child does not carry the internal marker, so gitxact's hooks
    judge its ref updates by the identity in *env*, as they would a user's git (a
    landing moving its target: it may be another agent's leased branch).
    """
    argv = [lite.real_git(), *args]
    child = child_env(env, keep_repo_env=keep_repo_env, internal=internal)
    if read_only:
        child[lite.OPTIONAL_LOCKS_ENV] = "0"
    data = input.encode() if isinstance(input, str) else input
    try:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            input=data,
            capture_output=True,
            env=child,
            check=False,
            timeout=timeout,
            stdin=subprocess.DEVNULL if data is None else None,
        )
    except FileNotFoundError as exc:
        raise lite.not_started(cwd) from exc
    result = GitResult(
        argv=list(args),
        returncode=proc.returncode,
        stdout=proc.stdout.decode("utf-8", "surrogateescape"),
        stderr=proc.stderr.decode("utf-8", "replace"),
    )
    if check and proc.returncode != 0:
        raise GitError(list(args), proc.returncode, result.stderr)
    return result


def run_streaming(
    args: Sequence[str],
    cwd: Path | str,
    *,
    env: Mapping[str, str] | None = None,
    keep_repo_env: bool = True,
    started: Callable[[int], None] | None = None,
) -> int:
    """Run a user's git as :func:`gitxact.git.lite.run_tied` does (our terminal, signals
    passed on, dying with us), in *cwd*; return its exit status.

    The environment is the user's (:func:`gitxact.git.lite.passthrough_env`: no
    ``GIT_TERMINAL_PROMPT`` override, no internal marker), since it is the user's command;
    ``keep_repo_env=False`` drops the locating variables, for a git sent to another folder.
    """
    child = lite.passthrough_env(env)
    return lite.run_tied(args, os.fspath(cwd), child if keep_repo_env else _drop_locating(child), started)


_UNKNOWN = Path()


class RepoLayout(Value):
    """Where a repository's pieces are, resolved once per command."""

    __slots__ = ("_main", "common_dir", "git_dir", "is_bare", "start", "worktree")

    def __init__(self, *, start: Path, git_dir: Path, common_dir: Path, worktree: Path | None, is_bare: bool) -> None:
        self.start = start
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.worktree = worktree
        self.is_bare = is_bare
        self._main: Path | None = _UNKNOWN  # a cache, not part of the value

    def _values(self) -> tuple[object, ...]:
        return (self.start, self.git_dir, self.common_dir, self.worktree, self.is_bare)

    @property
    def is_main_worktree(self) -> bool:
        return self.git_dir == self.common_dir

    @property
    def worktree_id(self) -> str:
        """git's own name for this worktree: ``main``, or the folder under ``worktrees/``."""
        return "main" if self.is_main_worktree else self.git_dir.name

    @property
    def state_dir(self) -> Path:
        return self.common_dir / "gitxact"

    @property
    def main_worktree(self) -> Path | None:
        """The main worktree (``None`` for a bare repository), from git's own list (asked once)."""
        if self._main is _UNKNOWN:
            entries = list_worktrees(self.common_dir)
            self._main = None if not entries or entries[0].bare else entries[0].path
        return self._main

    def require_worktree(self) -> Path:
        if self.worktree is None:
            raise NotARepositoryError(
                f"{self.start} is not inside a worktree",
                hint="run this from a checked-out worktree, or pass -C <worktree>",
            )
        return self.worktree


def discover(path: Path | str | None = None, *, options: Sequence[str] = ()) -> RepoLayout:
    """Resolve the repository that contains *path* (default: the current directory).

    With no path, inherited ``GIT_DIR``/``GIT_WORK_TREE`` are honoured, as git itself
    would; with an explicit path they are ignored so ``-C`` means what it says.
    *options* are git global options (``-C``, ``--git-dir``, ``--work-tree``...) from a
    user's command line (``gx``): the repository is then found exactly as their git will.
    """
    try:
        start = Path.cwd() if path is None else Path(path)
    except FileNotFoundError:
        raise NotARepositoryError(
            "the current folder no longer exists", hint="cd to an existing folder, or pass -C with an absolute path"
        ) from None
    if not start.exists():
        raise NotARepositoryError(f"{start}: no such directory")
    if not start.is_dir():
        raise NotARepositoryError(f"{start}: not a directory")
    start = start.resolve()
    result = run(
        [
            *options,
            "rev-parse",
            "--path-format=absolute",
            "--git-dir",
            "--git-common-dir",
            "--is-bare-repository",
            "--is-inside-work-tree",
            "--show-toplevel",
        ],
        start,
        check=False,
        keep_repo_env=path is None,
        read_only=True,
    )
    lines = result.stdout.splitlines()
    if len(lines) < 4:
        raise NotARepositoryError(
            f"{start} is not inside a git repository",
            hint="run gitxact inside a git worktree or pass -C <path>",
        )
    inside = lines[3] == "true"
    worktree = Path(lines[4]) if inside and len(lines) > 4 else None
    return RepoLayout(
        start=start,
        git_dir=Path(lines[0]),
        common_dir=Path(lines[1]),
        worktree=worktree,
        is_bare=lines[2] == "true",
    )


class WorktreeEntry(Value):
    """One record of ``git worktree list --porcelain``."""

    __slots__ = ("bare", "branch", "detached", "head", "locked", "path", "prunable")

    def __init__(
        self,
        *,
        path: Path,
        head: str | None = None,
        branch: str | None = None,
        bare: bool = False,
        detached: bool = False,
        locked: str | None = None,
        prunable: str | None = None,
    ) -> None:
        self.path = path
        self.head = head
        self.branch = branch
        self.bare = bare
        self.detached = detached
        self.locked = locked
        self.prunable = prunable


def _worktree_list(cwd: Path) -> GitResult:
    """``git worktree list``, again when it met a registration being written.

    ``git worktree add`` creates ``worktrees/<id>/`` first and writes its files after, so
    a list running at that moment (outside the repository lock: listing, status, an
    acquire's first look) fails with "failed to read worktrees/<id>/commondir". That is a
    moment, not a state: asked again shortly, git answers (seen in the demo, 1 run in 5).
    """
    args = ["worktree", "list", "--porcelain", "-z"]
    for attempt in range(8):
        result = run(args, cwd, check=False, read_only=True)
        if result.ok or "worktrees/" not in result.stderr or attempt == 7:
            break
        time.sleep(0.01 * (attempt + 1))
    if not result.ok:
        raise GitError(args, result.returncode, result.stderr)
    return result


def list_worktrees(cwd: Path) -> list[WorktreeEntry]:
    """git's registry of worktrees, main first (``-z``: paths may hold newlines)."""
    out = _worktree_list(cwd).zfields()
    entries: list[WorktreeEntry] = []
    record: dict[str, str] = {}

    def flush() -> None:
        path = record.get("worktree")
        if path:
            entries.append(
                WorktreeEntry(
                    path=Path(path),
                    head=record.get("HEAD"),
                    branch=record.get("branch"),
                    bare="bare" in record,
                    detached="detached" in record,
                    locked=record.get("locked"),
                    prunable=record.get("prunable"),
                )
            )
        record.clear()

    for item in out:
        if item == "":
            flush()
            continue
        key, _, value = item.partition(" ")
        record[key] = value
    flush()
    return entries


def rev_parse(cwd: Path, rev: str) -> str | None:
    """The object id *rev* names, or ``None`` when it names nothing."""
    result = run(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], cwd, check=False, read_only=True)
    return result.stdout.strip() or None if result.ok else None


def check_ref_format(refname: str) -> bool:
    """git's own verdict on a full ref name (``git check-ref-format``).

    Callers pass ``refs/heads/<branch>`` rather than using ``--branch``, which would
    expand ``@{-1}`` against the repository's history instead of rejecting it.
    """
    return run(["check-ref-format", refname], "/", check=False, read_only=True).ok


def config_regexp(cwd: Path, pattern: str) -> list[tuple[str, str]]:
    """All config entries whose key matches *pattern*, as (lower-cased key, value)."""
    result = run(["config", "-z", "--get-regexp", pattern], cwd, check=False, read_only=True)
    if result.returncode not in (0, 1):
        raise GitError(["config", "--get-regexp", pattern], result.returncode, result.stderr)
    pairs: list[tuple[str, str]] = []
    for item in result.zfields():
        key, _, value = item.partition("\n")
        pairs.append((key, value))
    return pairs
