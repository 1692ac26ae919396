"""The MCP server's stdin: a message the SDK cannot parse is answered, not dropped.

The SDK's stdio transport parses each line with pydantic, whose JSON parser stops at 200
levels of nesting; a line it cannot parse reaches the session as an exception, which is
logged and answered with nothing, so the client waits for a reply that never comes. So
the lines are looked at first: one nested deeper than :data:`PARSER_DEPTH` or larger than
:data:`MAX_MESSAGE_BYTES` is answered here, a tool call with a tool error that says why
(``[exit 2, reason invalid_argument]``, as the tools' own argument checks answer), any
other request with JSON-RPC's "Invalid Request". Its ``id`` and ``method`` are read by a
scan of the top level that does not recurse. Everything else passes to the SDK unchanged.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from io import TextIOWrapper
from typing import Any, cast

import anyio
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, ErrorData, JSONRPCError, JSONRPCResponse

from gitxact.util import inputs

#: Far more than a tool call with the tracker's largest value (1 MiB, JSON-escaped) needs.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
#: Below pydantic's 200: deeper, the SDK drops the line; shallower, the tools' own checks answer.
PARSER_DEPTH = 128

Reply = Callable[[SessionMessage], Awaitable[None]]


def refusal(line: str) -> str | None:
    """Why this line must be answered here rather than given to the SDK, or ``None``."""
    if len(line) > MAX_MESSAGE_BYTES // 4 and len(line.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        return f"the message is larger than {MAX_MESSAGE_BYTES} bytes"
    if inputs.nesting(line, PARSER_DEPTH) > PARSER_DEPTH:
        return f"the message is nested deeper than {PARSER_DEPTH} levels"
    return None


def envelope(line: str) -> dict[str, Any]:
    """The top-level ``id`` and ``method`` of a JSON-RPC line, found without parsing what it nests."""
    found: dict[str, Any] = {}
    decoder = json.JSONDecoder()
    depth, at, size = 0, 0, len(line)
    while at < size:
        char = line[at]
        if char == '"':
            end = _string_end(line, at)
            if depth == 1:
                colon = _skip(line, end)
                if colon < size and line[colon] == ":":
                    key = json.loads(line[at:end])
                    value_at = _skip(line, colon + 1)
                    if key in ("id", "method") and value_at < size and line[value_at] not in "[{":
                        with suppress(ValueError):
                            found[key], _ = decoder.raw_decode(line, value_at)
            at = end
            continue
        if char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        at += 1
    return found


def answer(line: str, why: str) -> SessionMessage | None:
    """The reply to a refused line: a tool error for a tool call, else Invalid Request; none to a notification."""
    top = envelope(line)
    request_id = top.get("id")
    if not isinstance(request_id, str | int) or isinstance(request_id, bool):
        return None
    text = f"{why} [exit 2, reason {inputs.INVALID_ARGUMENT}]"
    if top.get("method") == "tools/call":
        from gitxact.mcp.replies import failure

        dumped = failure(inputs.InvalidInputError(why)).model_dump(by_alias=True, exclude_none=True)
        return SessionMessage(JSONRPCResponse(jsonrpc="2.0", id=request_id, result=dumped))
    return SessionMessage(
        JSONRPCError(jsonrpc="2.0", id=request_id, error=ErrorData(code=INVALID_REQUEST, message=text))
    )


class GuardedLines:
    """stdin's lines for the SDK, minus the refused ones, which are answered through :attr:`reply`."""

    def __init__(self, source: anyio.AsyncFile[str]) -> None:
        self.source = source
        self.reply: Reply | None = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _lines(self) -> AsyncIterator[str]:
        async for line in self.source:
            why = refusal(line)
            if why is None:
                yield line
                continue
            message = answer(line, why)
            if message is not None and self.reply is not None:
                await self.reply(message)


@asynccontextmanager
async def guarded_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """The SDK's stdio transport over :class:`GuardedLines`.

    The wire is read from a private copy of fd 0, and fd 0 points at ``/dev/null`` meanwhile,
    as the SDK's own transport does: a check command or git started by a tool reads EOF
    instead of the protocol's bytes.
    """
    private = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    wire = TextIOWrapper(os.fdopen(private, "rb"), encoding="utf-8", errors="replace")
    lines = GuardedLines(anyio.wrap_file(wire))
    try:
        async with stdio_server(stdin=cast("anyio.AsyncFile[str]", lines)) as (read_stream, write_stream):
            lines.reply = write_stream.send
            yield read_stream, write_stream
    finally:
        os.dup2(private, 0)
        wire.close()


def _string_end(text: str, start: int) -> int:
    """The index just past the JSON string that opens at *start* (its quote)."""
    at = start + 1
    while True:
        quote = text.find('"', at)
        if quote < 0:
            return len(text)
        backslashes = 0
        while text[quote - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return quote + 1
        at = quote + 1


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at
