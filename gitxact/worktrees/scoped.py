"""``with ws.worktrees.lease(agent) as wt:`` — a lease that lives exactly as long as a block.

The block's handle carries path, branch, agent and token. On the way out, normal or
not, the lease is released with its own token and ``save_dirty``: uncommitted work is
saved to a snapshot ref instead of refusing, because an exit path that could refuse
would leave a lease nobody holds. A background heartbeat keeps a long block from
being reaped while this process lives.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from gitxact.errors import GitxactError, RefusedError, UsageError
from gitxact.util import console
from gitxact.worktrees.results import AcquireDoc, ReleaseDoc, RenewDoc


class Worktrees(Protocol):
    """What a scoped lease needs of :class:`gitxact.worktrees.manager.Worktrees` (which builds it)."""

    def acquire(
        self,
        agent: str,
        *,
        base: str | None = ...,
        branch: str | None = ...,
        reuse: str | None = ...,
        sparse: Sequence[str] | None = ...,
    ) -> AcquireDoc: ...

    def release(
        self, agent: str, *, token: str | None = ..., keep_branch: bool = ..., save_dirty: bool = ...
    ) -> ReleaseDoc: ...

    def renew(self, agent: str, *, token: str | None = ...) -> RenewDoc: ...


@dataclass
class LeasedWorktree:
    """What ``with ws.worktrees.lease(agent) as wt`` hands the orchestrator."""

    agent: str
    path: Path
    branch: str
    token: str
    base: str
    worktree_id: str | None
    #: Filled in when the ``with`` block ends: what the release did (snapshot ref, branch).
    released: ReleaseDoc | None = field(default=None)

    def repo(self) -> Any:
        """A GitPython ``git.Repo`` of this worktree, for orchestrators that drive git through it.

        Needs the optional extra (``pip install 'gitxact[gitpython]'``). GitPython runs
        the ``git`` it finds; point ``GIT_PYTHON_GIT_EXECUTABLE`` at ``gx`` to give its
        commands gitxact's locks as well.
        """
        try:
            import git
        except ImportError as exc:
            raise UsageError(
                "lease.repo() needs GitPython, which is not installed",
                hint="pip install 'gitxact[gitpython]'",
            ) from exc
        return git.Repo(self.path)


@contextlib.contextmanager
def leased_worktree(
    worktrees: Worktrees,
    agent: str,
    *,
    base: str | None,
    branch: str | None,
    keep_branch: bool,
    heartbeat: bool,
    reuse: str | None = None,
    sparse: Sequence[str] | None = None,
) -> Iterator[LeasedWorktree]:
    """See :meth:`gitxact.worktrees.manager.Worktrees.lease`."""
    acquired = worktrees.acquire(agent, base=base, branch=branch, reuse=reuse, sparse=sparse)
    if acquired.existing or acquired.token is None:
        raise RefusedError(
            f"agent {agent!r} already holds a live lease: {acquired.path} on branch {acquired.branch!r}, "
            f"owned by pid {acquired.owner_pid} on {acquired.owner_host}",
            hint="a `with` lease owns its worktree: release that lease first, or use worktrees.acquire()",
        )
    handle = LeasedWorktree(
        agent=agent,
        path=Path(acquired.path),
        branch=acquired.branch,
        token=acquired.token,
        base=acquired.base,
        worktree_id=acquired.worktree_id,
    )
    beat = _Heartbeat(worktrees, agent, acquired.token, acquired.ttl) if heartbeat else None
    failed = False
    try:
        yield handle
    except BaseException:
        failed = True
        raise
    finally:
        if beat is not None:
            beat.stop()
        try:
            handle.released = worktrees.release(agent, token=acquired.token, keep_branch=keep_branch, save_dirty=True)
        except GitxactError as exc:
            if not failed:
                raise
            console.warn(f"releasing {agent!r} after an error failed too: {exc.message}")


class _Heartbeat:
    """Renews one lease from a daemon thread until stopped (or until renewing fails)."""

    def __init__(self, worktrees: Worktrees, agent: str, token: str, ttl: float) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(worktrees, agent, token, max(1.0, ttl / 3)), daemon=True, name=f"lease-{agent}"
        )
        self._thread.start()

    def _run(self, worktrees: Worktrees, agent: str, token: str, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                worktrees.renew(agent, token=token)
            except GitxactError as exc:
                console.warn(f"heartbeat of {agent!r} stopped: {exc.message}")
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
