"""What a tool call answers: structured content always, a machine-readable reason on a refusal.

A success is the result's fields (the ``--json`` document of the CLI command it matches,
where there is one). A refusal or failure is a tool error (``isError``) whose structured
content is the document the CLI's ``--json`` prints for that error, if any (a refused
land's outcome with its conflicts), plus ``error``: the message, the hint, the exit code
and a ``reason`` a program can branch on. The text block says the same in one line, for
a model reading text.
"""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent
from pydantic import BaseModel

from gitxact.errors import (
    GitError,
    GitxactError,
    InvalidNameError,
    LockTimeoutError,
    OperationFailedError,
    RefusedError,
    StateError,
    UsageError,
    VersionConflictError,
)
from gitxact.util.inputs import INVALID_ARGUMENT

#: The reasons this server adds to the errors' own (``GitxactError.reason``).
CONFLICT = "conflict"
CHECK_FAILED = "check_failed"
NO_LEASE = "no_lease"
LEASE_LOST = "lease_lost"
DIRTY = "dirty"
TIMEOUT = "timeout"
INTERNAL = "internal"


class ToolRefusal(GitxactError):
    """A refusal this server decides itself (a sync that conflicts, no lease), with its document."""

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        exit_code: int,
        doc: BaseModel | None = None,
        hint: str | None = None,
        next_tools: list[str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
        self.exit_code = exit_code
        self.doc = doc
        #: What to call next, as tool calls (the document's own ``next_steps`` are shell commands).
        self.next_tools = next_tools or []


def success(result: BaseModel | dict[str, Any]) -> CallToolResult:
    """*result* as structured content, and as JSON text for a client that reads only text."""
    data = result if isinstance(result, dict) else result.model_dump(mode="json", by_alias=True)
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(data))], structured_content=data)


def failure(error: GitxactError) -> CallToolResult:
    """*error* as a tool error: its document (if it carries one) and ``error`` with the reason."""
    doc = getattr(error, "doc", None)
    data: dict[str, Any] = doc.model_dump(mode="json", by_alias=True) if isinstance(doc, BaseModel) else {}
    data["error"] = {
        "reason": reason_of(error),
        "exit_code": error.exit_code,
        "message": error.message,
        "hint": error.hint,
    }
    if isinstance(error, ToolRefusal) and error.next_tools:
        data["error"]["next_tools"] = error.next_tools
    return CallToolResult(
        content=[TextContent(type="text", text=describe(error))], structured_content=data, is_error=True
    )


def internal(exc: BaseException, log: str | None) -> CallToolResult:
    """A bug: its type and text, and where the traceback was kept, never the traceback itself."""
    where = f"; the traceback is in {log}" if log is not None else ""
    message = f"internal error: {type(exc).__name__}: {exc}{where}"
    data = {"error": {"reason": INTERNAL, "exit_code": 1, "message": message, "hint": None}}
    return CallToolResult(
        content=[TextContent(type="text", text=f"{message} [exit 1, reason {INTERNAL}]")],
        structured_content=data,
        is_error=True,
    )


def invalid_arguments(fields: list[tuple[str, str]]) -> CallToolResult:
    """Arguments the input schema refuses (before the tool runs): each field and why, never its value."""
    what = "; ".join(f"argument {name!r}: {why}" for name, why in fields)
    error = UsageError(what or "invalid arguments", hint="see the tool's input schema")
    error.reason = INVALID_ARGUMENT
    return failure(error)


def describe(error: GitxactError) -> str:
    """A tool error's text: ``message (hint: ...) [exit N, reason R]``."""
    hint = f" (hint: {error.hint})" if error.hint else ""
    return f"{error.message}{hint} [exit {error.exit_code}, reason {reason_of(error)}]"


def reason_of(error: GitxactError) -> str:
    """The error's own reason, else one named for its kind (a refused land: conflict or check_failed)."""
    from gitxact.land.results import LandFailedError, LandRefusedError
    from gitxact.snapshots.catalog import SnapshotNotFoundError
    from gitxact.tx.tdd import CheckFailedError, CheckInterruptedError, NotAFailingTestError
    from gitxact.tx.transactions import NoTransactionError

    if error.reason and not isinstance(error, StateError):  # StateError's reason is its text
        return error.reason
    kinds: list[tuple[type[GitxactError], str]] = [
        (NotAFailingTestError, "not_failing"),
        (CheckFailedError, CHECK_FAILED),
        (CheckInterruptedError, "interrupted"),
        (LockTimeoutError, TIMEOUT),
        (VersionConflictError, "version_conflict"),
        (NoTransactionError, "no_transaction"),
        (SnapshotNotFoundError, "not_found"),
        (LandFailedError, "land_failed"),
        (InvalidNameError, INVALID_ARGUMENT),
        (UsageError, INVALID_ARGUMENT),
        (GitError, "git_failed"),
    ]
    if isinstance(error, LandRefusedError):
        if error.doc.conflicts:
            return CONFLICT
        return CHECK_FAILED if error.doc.check_log else "refused"
    for kind, reason in kinds:
        if isinstance(error, kind):
            return reason
    if isinstance(error, RefusedError):
        return "refused"
    return "failed" if isinstance(error, OperationFailedError) else "error"
