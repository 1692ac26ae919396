"""``gitxact hook-claude create|remove``: Claude Code's worktree hooks (stdin JSON in, a path out)."""

from __future__ import annotations

import sys

import click

from gitxact.util import console


@click.group(name="hook-claude")
def hook_claude() -> None:
    """Claude Code's WorktreeCreate/WorktreeRemove hooks (`gitxact integrate claude-code` sets them up).

    Each reads Claude Code's hook input (one JSON object) on stdin.

    \b
    Examples:
      echo '{"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "feature-auth"}' | gitxact hook-claude create
      echo '{"hook_event_name": "WorktreeRemove", "cwd": ".", "worktree_path": "/src/repo.worktrees/feature-auth"}' \\
        | gitxact hook-claude remove
    """


@hook_claude.command()
def create() -> int:
    """Lease a worktree to agent NAME (from the input), owned by Claude Code; print its path.

    Only the path goes to stdout, as Claude Code reads it; messages go to stderr.

    \b
    Example:
      echo '{"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "feature-auth"}' | gitxact hook-claude create
    """
    from gitxact.integrations import claude_code

    doc = claude_code.create(claude_code.read_payload(sys.stdin.read(), claude_code.CREATE))
    verb = "resumed" if doc.existing else "leased"
    console.info(f"{verb} {doc.path} on branch {doc.branch} to {doc.agent} (owner pid {doc.owner_pid})")
    click.echo(doc.path)
    return 0


@hook_claude.command()
def remove() -> int:
    """Release the lease on worktree_path (from the input); uncommitted work goes to a snapshot ref.

    \b
    Example:
      echo '{"hook_event_name": "WorktreeRemove", "cwd": ".", "worktree_path": "/src/repo.worktrees/x"}' \\
        | gitxact hook-claude remove
    """
    from gitxact.integrations import claude_code

    payload = claude_code.read_payload(sys.stdin.read(), claude_code.REMOVE)
    doc = claude_code.remove(payload)
    if doc is None:
        console.info(f"no gitxact lease holds {payload.worktree_path}; nothing was removed")
        return 0
    saved = f"; uncommitted work saved to {doc.snapshot_ref}" if doc.snapshot_ref else ""
    console.info(f"released {doc.agent}'s worktree {doc.path}{saved}")
    return 0
