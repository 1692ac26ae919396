"""Whose branch a landing may move: never a branch leased to another agent.

The rule is the hooks' (:func:`gitxact.leases.reader.trespass`, the reference-transaction
veto on a leased branch, :mod:`gitxact.hooks.policy`): a process acting for one agent may
not move another agent's leased branch. A landing is held to it twice:

* when the request is filed, in the requester's process (:func:`check_target`): refused
  with exit 3 and reason ``leased_by_other`` before anything is queued;
* when the lander moves the target: its ``update-ref`` carries the lander's identity and
  not gitxact's internal marker (:func:`mover_env`), so the installed hook vetoes it as it
  would any other git's. The lander also asks :func:`check_target` again just before the
  move (a lease taken while the request waited).

Who acts: ``GITXACT_AGENT`` (the CLI's environment, the library's ``agent=``, the MCP
server's ``--agent``), else the owner of the leased worktree the command runs in; and a
lease token (``GITXACT_LEASE_TOKEN``) settles it as in the hooks.

A landing is stricter than one ref update in one respect: a process that acts for no
agent (a person in the main worktree) is refused too. A landing does not only move the
branch: it rewrites the files of the worktree that has it checked out, under the owner's
open transaction, whose rollback would later undo it without a word. A person who means
it says whose work it is: from the owner's worktree, or as ``GITXACT_AGENT=<owner>``.
Landing *from* another agent's leased branch only reads it, and stays allowed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact.errors import GitError, RefusedError
from gitxact.leases import reader as lease_reader
from gitxact.util.startup import AGENT_ENV

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.leases.reader import LeaseView

LEASED_BY_OTHER = "leased_by_other"


class LeasedByOtherError(RefusedError):
    """The target is a branch leased to another agent than the one this process acts for (exit 3)."""

    reason = LEASED_BY_OTHER


def acting_agent(repo: Repo, leases: list[LeaseView]) -> str | None:
    """The agent this process acts for: its own name, else the lease of the worktree it runs in."""
    if repo.agent is not None:
        return repo.agent
    if repo.layout.worktree is None:
        return None
    lease = lease_reader.for_path(leases, os.fspath(repo.layout.worktree))
    return lease.agent if lease is not None else None


def why_not(lease: LeaseView, agent: str | None, token: str | None) -> str | None:
    """Why a process acting for *agent* (with *token*) may not land onto *lease*'s branch, or ``None``."""
    why = lease_reader.trespass(lease.agent, lease.token_hash, agent, token)
    if why is None and agent is None and token is None:
        return f"it is leased to {lease.agent!r}, and this process acts for no agent (GITXACT_AGENT is not set)"
    return why


def check_target(repo: Repo, target: str) -> None:
    """Refuse (:class:`LeasedByOtherError`) to land onto *target* when it is leased to another agent.

    A leases file that cannot be verified raises its :class:`~gitxact.errors.StateError`:
    whose branch it is cannot be told then, and moving it blind is what this prevents.
    """
    leases = lease_reader.load(repo.layout.common_dir)
    lease = lease_reader.for_branch(leases, target)
    if lease is None:
        return
    agent = acting_agent(repo, leases)
    why = why_not(lease, agent, lease_reader.env_token())
    if why is not None:
        if agent is not None and repo.agent is None:
            why += f" (this runs in {agent!r}'s leased worktree)"
        repo.locks.events.emit("refusal", agent, by="land", what=f"land onto {target} (leased to {lease.agent})")
        raise LeasedByOtherError(
            f"refused to land onto {target}: {why} (its worktree {lease.path} would change under it)",
            hint=f"land onto a branch of your own, or let {lease.agent!r} land it (from its worktree)",
        )


def same_repository(repo: Repo, url: str) -> bool:
    """Whether the remote *url* is this repository itself (a path to it or to one of its worktrees).

    Landing "onto a remote" that is this clone moves this clone's branches: held to the same rule.
    """
    if "://" in url and not url.startswith("file://"):
        return False
    path = url.removeprefix("file://")
    if not os.path.isdir(path):
        return False
    found = repo.git(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd=Path(path), check=False)
    mine = os.path.realpath(repo.layout.common_dir)
    return found.ok and os.path.realpath(found.stdout.strip()) == mine


def mover_env(repo: Repo) -> dict[str, str]:
    """The identity the target's ``update-ref`` carries, for the hook to judge (the token is inherited)."""
    leases = lease_reader.load(repo.layout.common_dir) if lease_reader.exists(repo.layout.common_dir) else []
    agent = acting_agent(repo, leases)
    return {AGENT_ENV: agent} if agent is not None else {}


def vetoed(error: GitError) -> bool:
    """Whether a failed ref update was refused by gitxact's reference-transaction hook."""
    return lease_reader.REFUSED_MARK in error.stderr
