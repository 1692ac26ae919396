"""The tool list: each tool's hints (read-only, destructive, idempotent) and how a call is answered.

Each tool is a method of :class:`gitxact.mcp.server.Tools`; here it is wrapped so that its
arguments are checked first (NUL bytes, sizes, nesting: :mod:`gitxact.util.inputs`), its
result or its error becomes a :class:`~mcp_types.CallToolResult` with structured content
(:mod:`gitxact.mcp.replies`), and arguments the input schema refuses come back the same
way (reason ``invalid_argument``) instead of as the SDK's text-only error.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ToolAnnotations
from pydantic import ValidationError

from gitxact.errors import GitxactError, UsageError
from gitxact.mcp import replies
from gitxact.util import inputs

#: name -> (read-only, destructive, idempotent). Destructive: it can take away work or a
#: value someone had (a rollback, a rebase's rewritten commits, an overwritten key, a
#: removed worktree), even where gitxact keeps a copy in a ref.
HINTS: dict[str, tuple[bool, bool, bool]] = {
    "lease": (False, False, True),
    "release": (False, True, False),
    "renew": (False, False, True),
    "commit": (False, False, False),
    "diff": (True, False, True),
    "log": (True, False, True),
    "sync": (False, True, True),
    "sync_continue": (False, False, False),
    "sync_abort": (False, True, False),
    "conflicts": (True, False, True),
    "tx_begin": (False, False, False),
    "tx_savepoint": (False, False, False),
    "tx_rollback": (False, True, False),
    "tx_commit": (False, False, False),
    "tdd_red": (False, False, False),
    "tdd_green": (False, True, False),
    "tdd_refactor": (False, True, False),
    "tdd_done": (False, False, False),
    "land": (False, False, False),
    "snapshots_list": (True, False, True),
    "snapshots_restore": (False, True, False),
    "recover": (False, True, True),
    "tracker_get": (True, False, True),
    "tracker_set": (False, True, True),
    "tracker_incr": (False, False, False),
    "tracker_compare_and_set": (False, True, False),
    "status": (True, False, True),
}

#: The tools, by name (each a method of :class:`~gitxact.mcp.server.Tools`).
TOOLS = tuple(HINTS)

#: Arguments that are JSON values (bounded by the tracker's 1 MiB); every other one is text.
_JSON_ARGUMENTS = frozenset({"value"})


class GitxactServer(MCPServer[Any]):
    """The SDK's server, answering arguments its input schema refuses with structured content."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ValidationError):  # an unknown tool: said the same way
                return replies.failure(UsageError(str(exc), hint="list the tools (tools/list)"))
            # Field names and pydantic's reason only: the rejected values are the caller's data.
            fields = [(".".join(str(part) for part in err["loc"]), err["msg"]) for err in cause.errors()]
            return replies.invalid_arguments(fields)


def register(tools: object, server: MCPServer[Any]) -> None:
    """Add each tool of :data:`HINTS`, a method of *tools* (the server's ``Tools``), to *server*."""
    for name, (read_only, destructive, idempotent) in HINTS.items():
        hints = ToolAnnotations(
            read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent, open_world_hint=False
        )
        server.add_tool(answered(getattr(tools, name)), name=name, annotations=hints, structured_output=True)


def answered(tool: Callable[..., Any]) -> Callable[..., CallToolResult]:
    """*tool*, its arguments checked before it runs, its result or error as a tool result.

    The SDK reads the input schema and the output schema from the signature, which
    :func:`functools.wraps` hands on (``__wrapped__``); a returned ``CallToolResult`` is
    passed through, checked against the output schema unless it is an error.
    """

    @functools.wraps(tool)
    def run(**arguments: Any) -> CallToolResult:
        try:
            for name, value in arguments.items():
                what = f"argument {name!r}"
                inputs.check_json(value, what)
                if name in _JSON_ARGUMENTS:
                    continue  # its size is the tracker's to bound
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str):
                        inputs.check_text(text, what)
            return replies.success(tool(**arguments))
        except GitxactError as error:
            return replies.failure(error)
        except Exception as exc:  # noqa: BLE001 - a bug: said in one line, the traceback kept in the crash log
            from gitxact import error_handler

            log = error_handler.crash_log(exc)
            return replies.internal(exc, str(log) if log is not None else None)

    return run
