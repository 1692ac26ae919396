"""Claude Code's ``WorktreeCreate``/``WorktreeRemove`` hooks, answered with gitxact leases.

With these hooks configured, Claude Code (``claude --worktree NAME``, and subagents
with ``isolation: "worktree"``) asks the hook for a worktree instead of running
``git worktree add``, and asks it to remove that worktree at the end. The hook reads
one JSON document on stdin: the common fields (``session_id``, ``transcript_path``,
``cwd``, ``hook_event_name``) plus ``name`` for a creation (the documentation says
``worktree_name``; the program sends ``name``: both are read) and ``worktree_path``
for a removal. A creation prints the worktree's path as the last line of stdout;
anything else goes to stderr; a non-zero exit makes Claude Code give up.

The lease belongs to the Claude Code process, not to the hook: the hook is a child
that exits at once (often through a ``sh -c``), so the owner is the nearest ancestor
that is neither a shell nor a launcher (``GITXACT_OWNER_PID`` names another). When
that process dies the lease is reapable like any other, and its uncommitted work is
saved to a snapshot ref; a removal does the same at once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitxact.core.repo import Repo
from gitxact.errors import RefusedError, UsageError
from gitxact.git import run as git
from gitxact.leases import records as leases
from gitxact.util import console, inputs
from gitxact.util.files import NAME_CHARS
from gitxact.util.identity import OWNER_PID_ENV, ProcessIdentity
from gitxact.util.names import validate_agent
from gitxact.worktrees.include import copy_included, warn_skipped
from gitxact.worktrees.manager import Worktrees

if TYPE_CHECKING:
    from gitxact.worktrees.results import AcquireDoc, ReleaseDoc

CREATE, REMOVE = "WorktreeCreate", "WorktreeRemove"
#: What runs between Claude Code and the hook without living as long as Claude Code.
PASS_THROUGH = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox", "env", "nice", "nohup", "timeout"}
    | {"stdbuf", "time", "xargs", "uv", "uvx", "pipx", "npx"}
)
#: A run of characters no name may carry (the spelling is :data:`gitxact.util.files.NAME_CHARS`).
_UNSAFE = re.compile(f"[^{re.escape(NAME_CHARS)}]+")


@dataclass(frozen=True)
class Payload:
    event: str
    cwd: str | None
    session_id: str | None
    name: str | None = None
    source_ref: str | None = None
    worktree_path: str | None = None


def read_payload(text: str, event: str) -> Payload:
    """The hook input, checked: a JSON object for *event* (exit 2 otherwise, nothing done)."""
    try:
        data: Any = inputs.loads(text, f"{event} hook input")
    except inputs.InvalidInputError:
        raise
    except ValueError as exc:
        raise UsageError(f"{event} hook: stdin is not JSON ({exc})", hint="Claude Code sends one JSON object") from None
    if not isinstance(data, dict):
        raise UsageError(f"{event} hook: stdin is not a JSON object")
    named = data.get("hook_event_name")
    if named is not None and named != event:
        raise UsageError(f"this is the {event} hook, but Claude Code sent {named!r}")

    def text_field(*keys: str) -> str | None:
        for key in keys:
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return value
        return None

    return Payload(
        event=event,
        cwd=text_field("cwd"),
        session_id=text_field("session_id"),
        name=text_field("name", "worktree_name"),
        source_ref=text_field("source_ref", "base_ref", "base_commit"),
        worktree_path=text_field("worktree_path"),
    )


def agent_name(payload: Payload) -> str:
    """The agent for Claude Code's worktree name: its characters an agent name allows.

    ``feat/auth`` becomes ``feat-auth``; with no name at all, the session gives one.
    """
    raw = payload.name or (f"claude-{payload.session_id[:8]}" if payload.session_id else "")
    name = _UNSAFE.sub("-", raw).lstrip("-.").replace("..", ".")[:64].rstrip(".")
    name = name.removesuffix(".lock") or "claude"
    return validate_agent(name)


def owner_pid(start: int | None = None) -> int:
    """The Claude Code process: :data:`~gitxact.util.identity.OWNER_PID_ENV`, else the first ancestor that is no shell.

    Without ``/proc`` the parent is all that can be told.
    """
    named = os.environ.get(OWNER_PID_ENV, "").strip()
    if named:
        if not named.isdigit() or int(named) <= 0:
            raise UsageError(f"{OWNER_PID_ENV}={named!r} is not a process id")
        return int(named)
    pid = os.getppid() if start is None else start
    for _ in range(16):
        comm = _comm(pid)
        if comm is None or comm not in PASS_THROUGH:
            return pid
        parent = _parent(pid)
        if parent is None or parent <= 1:
            return pid
        pid = parent
    return pid


def ancestors(pid: int | None = None) -> list[int]:
    """This process's ancestors, nearest first (empty without ``/proc``)."""
    found: list[int] = []
    current = _parent(os.getpid() if pid is None else pid)
    while current is not None and current > 1 and len(found) < 64:
        found.append(current)
        current = _parent(current)
    return found


def repo_for(payload: Payload) -> Repo:
    """The repository the session works in, seen from its main worktree.

    The hook may run inside the very worktree a removal is about to delete, so the
    features run from the main worktree (or the common dir of a bare repository).
    """
    candidates = [payload.cwd, os.environ.get("CLAUDE_PROJECT_DIR"), os.getcwd()]
    where = next((c for c in candidates if c and os.path.isdir(c)), None)
    if where is None:
        raise UsageError(f"{payload.event} hook: no folder to find the repository from (cwd {payload.cwd!r})")
    layout = git.discover(Path(where))
    return Repo(layout.main_worktree or layout.common_dir)


def create(payload: Payload) -> AcquireDoc:
    """Lease a worktree to the agent Claude Code named, owned by Claude Code; copy ``.worktreeinclude`` files.

    The same name asked again by the same Claude Code process returns its worktree (a
    resumed session); asked by another live process it is refused (exit 3), since two
    sessions must never share a worktree.
    """
    repo = repo_for(payload)
    agent = agent_name(payload)
    owner = owner_pid()
    doc = Worktrees(repo).acquire(agent, base=payload.source_ref, owner_pid=owner)
    if doc.existing and doc.owner_pid != owner and not ProcessIdentity.of(doc.owner_pid).is_dead():
        raise RefusedError(
            f"worktree {agent!r} is leased to another live process (pid {doc.owner_pid} on {doc.owner_host}): "
            f"{doc.path}",
            hint="give this session another worktree name, or end that session first",
        )
    if not doc.existing:
        source = Path(payload.cwd) if payload.cwd and os.path.isdir(payload.cwd) else repo.layout.worktree
        if source is not None:
            top = git.discover(source).worktree
            # The acquire copied what the main worktree has; this adds what Claude Code's own folder has.
            more = copy_included(top, Path(doc.path)) if top is not None else None
            copied = [*doc.included, *(more.copied if more else [])]
            if more is not None and more.skipped:
                warn_skipped(more.skipped, Path(doc.path))
                doc = doc.model_copy(update={"include_skipped": sorted({*doc.include_skipped, *more.skipped})})
            if copied:
                console.info(f"copied {len(copied)} file(s) named by .worktreeinclude into {doc.path}")
    return doc


def remove(payload: Payload) -> ReleaseDoc | None:
    """End the lease on the worktree Claude Code is done with, saving uncommitted work first.

    ``None`` when no lease holds that path (already released, or not gitxact's: then
    nothing is touched). Only the process that holds the lease, or anyone once it is
    dead, may end it this way.
    """
    if payload.worktree_path is None:
        raise UsageError("WorktreeRemove hook: no worktree_path in the hook input")
    repo = repo_for(payload)
    lease = leases.for_path(repo, payload.worktree_path)
    if lease is None or os.path.realpath(lease.path) != os.path.realpath(payload.worktree_path):
        return None
    mine = {os.getpid(), owner_pid(), *ancestors()}
    if lease.owner_pid not in mine and not lease.owner.is_dead():
        raise RefusedError(
            f"the lease of {lease.agent!r} ({lease.path}) belongs to pid {lease.owner_pid} on {lease.owner_host}, "
            "which is alive and not this Claude Code session",
            hint="let that session end it, or `gitxact worktree release AGENT --force`",
        )
    return Worktrees(repo).release(lease.agent, force=True)


def _comm(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 1 :].split()
    return int(fields[1]) if len(fields) > 1 else None
