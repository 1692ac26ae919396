"""Writing gitxact's worktree hooks into Claude Code's ``.claude/settings.json``.

The file is the user's: every other key and every other hook is kept as it was,
in its order, and running it again changes nothing. gitxact's entries are recognised
by their command (``... hook-claude create|remove``), so an older or differently
spelled gitxact entry is replaced rather than doubled. A ``WorktreeCreate`` or
``WorktreeRemove`` command of someone else's is refused instead of joined: Claude Code
runs every hook of an event, and two creators would each make a worktree.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from gitxact.core.documents import Document
from gitxact.errors import RefusedError, UsageError

EVENTS = {"WorktreeCreate": "create", "WorktreeRemove": "remove"}
_OURS = re.compile(r"(^|[\s/])gitxact\s+hook-claude\s+(create|remove)\b")

Action = Literal["installed", "updated", "unchanged", "removed", "absent"]


class McpRegistration(BaseModel):
    """The ``gitxact`` entry of ``.mcp.json`` (written by :mod:`gitxact.integrations.claude_mcp`)."""

    config: str
    action: Action
    #: The entry Claude Code starts (``None`` once removed).
    server: dict[str, Any] | None


class IntegrateDoc(Document):
    settings: str
    action: Action
    #: event -> the command Claude Code runs for it.
    hooks: dict[str, str]
    #: With ``--mcp``: the ``.mcp.json`` entry (:mod:`gitxact.integrations.claude_mcp`).
    mcp: McpRegistration | None = None


def hook_command(gitxact: str, verb: str) -> str:
    return f"{shlex.quote(gitxact)} hook-claude {verb}"


def is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and isinstance(hook.get("command"), str) and bool(_OURS.search(hook["command"]))


def integrate(settings: Path, *, gitxact: str = "gitxact", remove: bool = False) -> IntegrateDoc:
    """Add (or with *remove*, take out) gitxact's two hooks; write only if something changed."""
    existed = settings.exists()
    data = read_json_object(settings)
    before = json.dumps(data, sort_keys=False)
    hooks = data.get("hooks", {})
    if not isinstance(hooks, dict):
        raise UsageError(f'{settings}: "hooks" is not an object', hint="fix the file by hand first")
    had_ours = False
    for event, verb in EVENTS.items():
        groups = hooks.get(event, [])
        if not isinstance(groups, list):
            raise UsageError(f"{settings}: hooks.{event} is not a list", hint="fix the file by hand first")
        kept_groups: list[Any] = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(inner, list):
                kept_groups.append(group)
                continue
            others = [hook for hook in inner if not is_ours(hook)]
            had_ours = had_ours or len(others) != len(inner)
            if others and not remove:
                shown = "; ".join(
                    str(hook.get("command", hook)) if isinstance(hook, dict) else str(hook) for hook in others
                )
                raise RefusedError(
                    f"{settings} already has a {event} hook that is not gitxact's: {shown}",
                    hint=f"Claude Code runs every {event} hook; remove that one (copying git-ignored files is "
                    "what .worktreeinclude is for), then run this again",
                )
            if others:
                kept_groups.append({**group, "hooks": others})
        if not remove:
            kept_groups.append({"hooks": [{"type": "command", "command": hook_command(gitxact, verb)}]})
        if kept_groups:
            hooks[event] = kept_groups
        else:
            hooks.pop(event, None)
    if hooks:
        data["hooks"] = hooks
    else:
        data.pop("hooks", None)
    changed = json.dumps(data, sort_keys=False) != before
    if remove:
        action: Action = "removed" if had_ours else "absent"
    else:
        action = "unchanged" if not changed else ("updated" if had_ours else "installed")
    if changed and (existed or data):
        write_json_atomically(settings, data)
    shown_hooks = {} if remove else {event: hook_command(gitxact, verb) for event, verb in EVENTS.items()}
    return IntegrateDoc(settings=str(settings), action=action, hooks=shown_hooks)


def _describe(hook: Any) -> str:
    return str(hook.get("command", hook)) if isinstance(hook, dict) else str(hook)


def read_json_object(settings: Path) -> dict[str, Any]:
    try:
        text = settings.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise UsageError(f"cannot read {settings}: {exc.strerror}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{settings} is not valid JSON ({exc}); nothing was changed") from None
    if not isinstance(data, dict):
        raise UsageError(f"{settings} does not hold a JSON object; nothing was changed")
    return data


def write_json_atomically(settings: Path, data: dict[str, Any]) -> None:
    """Replace the file atomically: Claude Code may be reading it right now."""
    settings.parent.mkdir(parents=True, exist_ok=True)
    tmp = settings.with_name(f".{settings.name}.gitxact-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(settings).st_mode & 0o777)
        os.replace(tmp, settings)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
