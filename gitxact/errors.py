"""The exception hierarchy: every failure a user can cause is one of these.

Each class carries its exit code (the table in docs/commands.md), so the single handler in
``error_handler`` can turn any of them into one line (plus a hint) and a code
without a table of special cases. Anything that is not a ``GitxactError`` is a bug.
"""

from __future__ import annotations

TYPE_CHECKING = False  # as in gitxact/__init__.py: no typing/pathlib import on gx's fast path
if TYPE_CHECKING:
    from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_TEMPFAIL = 75  # sysexits EX_TEMPFAIL: a lock was busy, try again later


class GitxactError(Exception):
    """Base of every error gitxact reports to a user."""

    exit_code = EXIT_FAILED
    #: A stable word for programs (an MCP tool error carries it, the CLI prints it), where
    #: the exit code alone does not say which rule refused; ``None`` for most errors.
    reason: str | None = None

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(GitxactError):
    """Bad input: a malformed name, value, option or path (exit 2)."""

    exit_code = EXIT_USAGE


class NotARepositoryError(UsageError):
    """The path given is missing or is not inside a git worktree."""


class InvalidNameError(UsageError):
    """An agent name, ref, key or path was rejected before it touched anything."""


class CommandNotRunnableError(UsageError):
    """A user's command could not be started; the exit code follows the shell (126/127)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = code


class OperationFailedError(GitxactError):
    """The operation was attempted and failed (exit 1)."""


class GitMissingError(OperationFailedError):
    """git is not on PATH."""


class GitError(OperationFailedError):
    """A git command gitxact ran for itself failed."""

    def __init__(self, argv: list[str], returncode: int, stderr: str, *, hint: str | None = None) -> None:
        detail = stderr.strip().splitlines()[-1] if stderr.strip() else f"exit code {returncode}"
        super().__init__(f"git {' '.join(argv)} failed: {detail}", hint=hint)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class StateError(OperationFailedError):
    """A state file could not be read, verified or written."""

    def __init__(self, path: Path, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"state file {path}: {reason}", hint=hint)
        self.path = path
        self.reason = reason


class StateAccessError(OperationFailedError):
    """gitxact's state folder (or a file in it) cannot be used by this user: permission denied.

    Its message names the path, its hint how the repository is shared (git's
    ``core.sharedRepository``, read from the git directory's mode, as gitxact follows it)
    and what would make it usable.
    """

    def __init__(self, path: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path

    @classmethod
    def of(cls, path: str, exc: OSError) -> StateAccessError:
        import grp  # the error path only
        import os
        import pwd

        def user(uid: int) -> str:
            try:
                return pwd.getpwuid(uid).pw_name
            except KeyError:
                return f"uid {uid}"

        def owner(info: os.stat_result) -> str:
            return user(info.st_uid)

        def group(info: os.stat_result) -> str:
            try:
                return grp.getgrgid(info.st_gid).gr_name
            except KeyError:
                return f"gid {info.st_gid}"

        me = user(os.geteuid())
        # The state folder is <git dir>/gitxact, and the git directory's mode is git's sharing.
        parts = path.split(os.sep)
        tops = [i for i, part in enumerate(parts) if part == "gitxact"]
        git_dir = next(
            (d for d in (os.sep.join(parts[:i]) or os.sep for i in reversed(tops)) if os.path.isfile(f"{d}/HEAD")), None
        )
        if git_dir is None:  # not the state folder: a worktree, the worktree root
            message = f"{path}: {exc.strerror or 'permission denied'} for {me}"
            where = path if os.path.lexists(path) else os.path.dirname(path)
            try:
                there = os.stat(where)
            except OSError:
                return cls(path, message)
            hint = (
                f"{where} is mode {there.st_mode & 0o7777:o}, owned by {owner(there)}, group {group(there)}; "
                "gitxact makes its folders group-writable only in a repository shared with `git init "
                f"--shared=group` (core.sharedRepository); one made before: `chmod g+ws {where}` by its owner"
            )
            return cls(path, message, hint=hint)
        message = f"{path}: {exc.strerror or 'permission denied'} for {me}; gitxact's state folder is not usable here"
        try:
            here, there = os.stat(git_dir), os.stat(path if os.path.lexists(path) else os.path.dirname(path))
        except OSError:
            return cls(path, message, hint="check the permissions of the repository's git directory")
        sharing = f"core.sharedRepository: {git_dir} is mode {here.st_mode & 0o7777:o}"
        if here.st_mode & 0o2020 != 0o2020:
            hint = (
                f"the repository is not shared ({sharing}), so gitxact's folders are private to their owner "
                f"({owner(there)}): share it with `git init --shared=group` and `gitxact init` as its owner, "
                "or run gitxact as that user"
            )
        elif here.st_gid not in os.getgroups() and here.st_gid != os.getegid():
            hint = f"the repository is shared with group {group(here)} ({sharing}) and {me} is not in it"
        else:
            hint = (
                f"the repository is shared with group {group(here)} ({sharing}), but {os.path.basename(path)} "
                f"is mode {there.st_mode & 0o7777:o}, owned by {owner(there)}: made before gitxact shared "
                f"its files; `gitxact init` run by {owner(there)} shares them as the repository is shared"
            )
        return cls(path, message, hint=hint)


class RefusedError(GitxactError):
    """A guard refused the operation on purpose (exit 3)."""

    exit_code = EXIT_REFUSED


class VersionConflictError(RefusedError):
    """An optimistic write expected a version that is no longer current."""


class LockTimeoutError(GitxactError):
    """A lock was not obtained within the timeout (exit 75)."""

    exit_code = EXIT_TEMPFAIL


class LockLostError(GitxactError):
    """A lock ended before its holder released it (exit 75: what ran under it may be
    incomplete; run it again). On PostgreSQL: the session that held it ended (a server
    restart), or the holder could not confirm it within the bound and gave it up first
    (a network cut), ending the command that ran under it."""

    exit_code = EXIT_TEMPFAIL


class LockOrderError(GitxactError, RuntimeError):
    """A programming error: locks requested against the hierarchy, or an upgrade.

    Raised at once instead of waiting, because waiting is how deadlocks start.
    """
