"""The exception hierarchy: every failure a user can cause is one of these.

Each class carries its exit code (the table in README.md), so the single handler in
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
