"""The lean core's git: finding git, the environments git runs in, and starting it without subprocess.

Every rule of running git that ``gx`` and the git hooks need is defined here, once: which
git (:func:`real_git`, skipping gitxact's shim), the user's environment minus gitxact's
internal marker (:func:`passthrough_env`), what a git that could not be started means
(:func:`not_started`), and the three ways ``gx`` starts one (exec, a captured query, a
child tied to us). :mod:`gitxact.git.run`, the rich module that runs gitxact's own git
through ``subprocess`` and parses its answers, is built on these and repeats none of them;
callers import these names from here, never through it. Standard library only, and
nothing beyond ``os`` at module level: ``gx status`` must cost at most 1.5 Python start-ups
over ``git status``, and the reference-transaction hook runs on every ref update.

The environment marker :data:`INTERNAL_ENV` tells gitxact's own hooks that a ref change
was made by gitxact itself (``git.run`` sets it); a user's git run through ``gx`` must
never carry it, even when ``gx`` is started from a hook of such a git.
"""

from __future__ import annotations

import os

from gitxact.errors import GitMissingError, NotARepositoryError
from gitxact.util.startup import child_environ

TYPE_CHECKING = False  # see gitxact/__init__.py: no typing import on the fast path
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import NoReturn

    from gitxact.errors import GitxactError

#: Set (to "1") in the environment of every git gitxact runs for itself.
INTERNAL_ENV = "GITXACT_INTERNAL"
#: git's own switch: read-only commands then never take ``index.lock`` to refresh the index.
OPTIONAL_LOCKS_ENV = "GIT_OPTIONAL_LOCKS"
#: The real git to run, when the first ``git`` on ``PATH`` is gitxact's shim (or to choose another).
GIT_ENV = "GITXACT_GIT"
#: Any of these set, and git may find another repository than the one around its ``cwd``:
#: :mod:`gitxact.git.locate`'s walk then leaves discovery to git, and a git run in another
#: folder must not inherit them (:data:`gitxact.git.run.REPO_LOCATING_VARS`).
LOCATING_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_COMMON_DIR",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_NAMESPACE",
)
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
        raise not_started()
    _real_git = chosen
    return chosen


def is_shim(path: str) -> bool:
    """Whether *path* is a shim ``gitxact shim install`` wrote (its first bytes carry the mark)."""
    try:
        with open(path, "rb") as handle:
            return SHIM_MARK in handle.read(512)
    except OSError:
        return False


def not_started(cwd: str | os.PathLike[str] | None = None, why: str | None = None) -> GitxactError:
    """What a git that could not be started is reported as, by every way gitxact starts one.

    Its folder gone (*cwd*, when the caller chose one): not a repository; else git itself is
    missing (or *why*: another reason it could not run).
    """
    if cwd is not None and not os.path.isdir(cwd):
        return NotARepositoryError(f"{os.fspath(cwd)}: no such directory")
    return GitMissingError(
        why or "git was not found on PATH", hint=f"install git (2.39 or newer), fix PATH, or point {GIT_ENV} at it"
    )


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
        raise not_started() from exc


def capture(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
    """Run a read-only git query in the current directory and return (exit code, stdout).

    For ``gx``'s alias lookup, which must see the repository exactly as the user's git
    will (same cwd, same ``GIT_DIR``), so the environment is passed through as given.
    """
    # posix_spawn with a pipe, not subprocess (whose import brings signal's enums):
    # stdin and stderr are /dev/null, as a captured query's were.
    # start-up: saves over 0.1 S on gx st, an alias (docs/benchmark.md, "Start-up tricks")
    out, into = os.pipe2(os.O_CLOEXEC)
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            real_git(),
            ["git", *args],
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null, 0),
                (os.POSIX_SPAWN_DUP2, into, 1),
                (os.POSIX_SPAWN_DUP2, null, 2),
            ],
        )
    except FileNotFoundError as exc:
        os.close(out)
        raise not_started() from exc
    finally:
        os.close(into)
        os.close(null)
    chunks = []
    try:
        while chunk := os.read(out, 65536):
            chunks.append(chunk)
    finally:
        os.close(out)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), b"".join(chunks).decode("utf-8", "surrogateescape")


def worktree_ids(common_dir: str | os.PathLike[str]) -> list[str]:
    """git's ids of every worktree (``main`` and the folders under ``worktrees/``), without running git."""
    try:
        linked = sorted(
            entry.name
            for entry in os.scandir(os.path.join(common_dir, "worktrees"))
            if entry.is_dir(follow_symlinks=False)
        )
    except FileNotFoundError:
        linked = []
    return ["main", *linked]


def run_tied(
    args: Sequence[str], cwd: str, env: Mapping[str, str], started: Callable[[int], None] | None = None
) -> int:
    """Run a user's git as a child with our stdin/stdout/stderr; return a shell-style exit status.

    ``gx``'s locked path, so it behaves like a shell running git: Ctrl-C goes to git (the
    terminal signals the whole foreground group; we ignore it and wait, so the locks
    outlive git), SIGTERM/SIGHUP are passed on, and a git killed by signal N gives
    128+N. git dies with this process (``PR_SET_PDEATHSIG``,
    :func:`gitxact.util.tie.die_with_parent`): a SIGKILLed ``gx`` cannot leave its
    git working under locks it no longer holds. *started* is told git's pid.

    ``fork`` + ``exec`` by hand rather than ``subprocess`` (whose import brings ``signal``'s
    ``enum``); an exec that fails is reported back through a close-on-exec pipe, as
    subprocess does. Start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks").
    """
    from gitxact.util.tie import die_with_parent

    program = real_git()
    tie = die_with_parent()
    argv = ["git", *args]
    child_env = dict(env)
    ready, report = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child; what it does is seen by the parent and the tests
        try:
            os.close(ready)
            if tie is not None:
                tie()
            os.chdir(cwd)
            os.execve(program, argv, child_env)
        except BaseException as exc:  # noqa: BLE001 - anything: the parent must hear of it
            os.write(report, f"{getattr(exc, 'errno', 0) or 0}:{exc.__class__.__name__}".encode())
        finally:
            os._exit(127)
    os.close(report)
    try:
        failure = os.read(ready, 200)
    finally:
        os.close(ready)
    if failure:
        os.waitpid(pid, 0)
        errno, _, kind = failure.decode("ascii", "replace").partition(":")
        why = None if kind == "FileNotFoundError" else f"git could not be started ({kind}, errno {errno})"
        raise not_started(cwd, why)
    if started is not None:
        started(pid)
    return wait_forwarding(pid)


def wait_forwarding(pid: int) -> int:
    """Wait for *pid* as a shell does: ignore Ctrl-C (git gets it), pass SIGTERM and SIGHUP on."""
    if TYPE_CHECKING:
        import signal as signals
    else:
        try:
            # start-up: saves over 0.1 S on gx commit (docs/benchmark.md, "Start-up tricks")
            import _signal as signals  # the C module: signal.py builds enums on import
        except ImportError:  # pragma: no cover - another Python
            import signal as signals

    def forward(signum: int, _frame: object) -> None:
        try:  # noqa: SIM105 - no contextlib on gx's path
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    previous = {
        signals.SIGINT: signals.signal(signals.SIGINT, signals.SIG_IGN),
        signals.SIGTERM: signals.signal(signals.SIGTERM, forward),
        signals.SIGHUP: signals.signal(signals.SIGHUP, forward),
    }
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for old kernels' EINTR
                continue
    finally:
        for signum, handler in previous.items():
            signals.signal(signum, handler)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
