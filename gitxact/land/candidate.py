"""The candidate: a private temporary worktree where a target's tip meets the branches to land.

Everything here is git work on things only the lander knows about (a detached worktree
under ``<git-common-dir>/gitxact/land/``, a fetched ref under ``refs/gitxact/land/``), so
it takes no lock of its own; the landing queue's lock is what keeps landers apart. The
agents' worktrees are never touched: a branch is read by its commit id, and the rebase
or merge happens in the candidate, on a detached HEAD.

Moving the target is compare-and-swap only: ``git update-ref refs/heads/T new old`` for a
local branch, ``git push --atomic --force-with-lease=refs/heads/T:old`` for a remote one.
If the target moved meanwhile (someone landed outside the queue) the move fails cleanly
and the caller builds and checks again from the new tip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from gitxact.errors import GitError, OperationFailedError, RefusedError, UsageError
from gitxact.git import refs
from gitxact.git import run as git
from gitxact.land import boundary
from gitxact.leases import reader as lease_reader
from gitxact.worktrees import integration, registration

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.land.records import Strategy

T = TypeVar("T")

LAND_DIR = "land"
FETCH_PREFIX = "refs/gitxact/land/"
#: ``git worktree lock`` reason of a candidate; never the lease prefix, so reap leaves it to us.
LOCK_REASON_PREFIX = "gitxact land "
#: Rejections of a push that mean "the remote branch is not where we built on".
_MOVED_MARKERS = ("stale info", "fetch first", "non-fast-forward", "rejected")
#: No editor, no prompt: a landing runs unattended.
_QUIET = {"GIT_EDITOR": ":", "GIT_SEQUENCE_EDITOR": ":", "GIT_MERGE_AUTOEDIT": "no"}


class TargetMovedError(OperationFailedError):
    """The target was not at the tip the candidate was built on: build and check again."""


class MovedError(Exception):
    """Not an error: the lander's signal that the target moved between build and move, so it
    builds again from the new tip (kept apart from :class:`TargetMovedError`, which a lander
    would record as a failure)."""


@dataclass
class Applied:
    """One branch applied to the candidate: its new commits, or the paths it conflicts on."""

    commits: list[str] = field(default_factory=list)
    #: Each of the branch's commits -> the commit it landed as (:func:`integration.match_rewritten`).
    landed_as: dict[str, str] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    already: bool = False


def worktree_folder(repo: Repo, work_id: str) -> Path:
    return repo.store.ensure(LAND_DIR) / LAND_DIR / work_id


def lock_reason(work_id: str, pid: int) -> str:
    return f"{LOCK_REASON_PREFIX}{work_id} (pid {pid})"


# -- the target ------------------------------------------------------------------------------


def check_target(target: str) -> str:
    """A branch name git accepts (``main``, ``release/2.0``), not an option or a full ref."""
    if (
        not target
        or target.startswith(("-", "refs/"))
        or target == "HEAD"
        or not git.check_ref_format(f"refs/heads/{target}")
    ):
        raise UsageError(f"invalid target branch {target!r}", hint="name a branch, e.g. --onto main")
    return target


def remote_url(repo: Repo, remote: str) -> str:
    """What *remote* names (a configured remote's URL, or the path/URL itself): one queue per place."""
    if not remote or remote.startswith("-"):
        raise UsageError(f"invalid remote {remote!r}", hint="name a remote, a path or a URL git can push to")
    result = repo.git(["ls-remote", "--get-url", remote], cwd=repo.layout.common_dir, check=False)
    return result.stdout.strip() or remote


def read_target(repo: Repo, target: str, remote: str | None, fetch_ref: str | None) -> str:
    """The target's tip now: the local branch, or the remote's fetched into *fetch_ref*."""
    if remote is None:
        tip = refs.read(repo.layout.common_dir, f"refs/heads/{target}")
        if tip is None:
            raise RefusedError(f"there is no branch {target!r} to land onto", hint="create it first")
        return tip
    assert fetch_ref is not None  # noqa: S101 - the caller journals the ref before fetching
    result = repo.git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"+refs/heads/{target}:{fetch_ref}"],
        cwd=repo.layout.common_dir,
        check=False,
    )
    if not result.ok:
        if "couldn't find remote ref" in result.stderr:
            raise RefusedError(f"{remote} has no branch {target!r} to land onto", hint="push it there first")
        raise GitError(result.argv, result.returncode, result.stderr)
    tip = refs.read(repo.layout.common_dir, fetch_ref)
    if tip is None:  # pragma: no cover - fetch succeeded, so the ref exists
        raise OperationFailedError(f"fetching {target!r} from {remote} gave no commit")
    return tip


def remote_tip(repo: Repo, remote: str, target: str) -> str | None:
    """The remote branch's tip, asked without fetching (recover's question: did the push land?)."""
    result = repo.git(["ls-remote", "--heads", remote, f"refs/heads/{target}"], cwd=repo.layout.common_dir)
    for line in result.lines():
        oid, _, name = line.partition("\t")
        if name == f"refs/heads/{target}":
            return oid
    return None


def current_tip(repo: Repo, target: str, remote: str | None) -> str | None:
    if remote is None:
        return refs.read(repo.layout.common_dir, f"refs/heads/{target}")
    return remote_tip(repo, remote, target)


# -- the temporary worktree ------------------------------------------------------------------


def add_worktree(repo: Repo, path: Path, base: str, reason: str) -> None:
    """A detached worktree at *base*, locked in the same step (no ``prune`` can catch it half made)."""
    repo.git(
        ["worktree", "add", "--quiet", "--detach", "--lock", "--reason", reason, str(path), base],
        cwd=repo.layout.common_dir,
    )


def remove_worktree(repo: Repo, path: Path) -> bool:
    """Remove the candidate at *path* however far it got; True if anything was there.

    ``git worktree remove`` first (it knows its own bookkeeping); what a killed
    ``worktree add`` or a broken folder leaves, git cannot remove, so the admin folder
    that names *path* and the folder itself (both private to gitxact) are deleted.
    """
    found = False
    real = os.path.realpath(path)
    if path.exists():
        found = True
        with contextlib.suppress(GitError):
            repo.git(["worktree", "remove", "--force", "--force", str(path)], cwd=repo.layout.common_dir)
    for admin in registration.admin_dirs(repo):
        folder = registration.folder_of(admin)
        if folder is not None and os.path.realpath(folder) == real:
            found = True
            shutil.rmtree(admin, ignore_errors=True)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    return found


def strays(repo: Repo) -> list[Path]:
    """Every candidate folder and registration on disk; those no landing record names are a killed lander's."""
    found: dict[str, Path] = {}
    folder = repo.state_dir / LAND_DIR
    if folder.is_dir():
        for entry in folder.iterdir():
            found[os.path.realpath(entry)] = entry
    for admin in registration.admin_dirs(repo):
        try:
            reason = (admin / "locked").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        path = registration.folder_of(admin)
        if reason.startswith(LOCK_REASON_PREFIX) and path is not None:
            found[os.path.realpath(path)] = path
    return [path for _real, path in sorted(found.items())]


def delete_fetch_ref(repo: Repo, ref: str | None) -> None:
    if ref is not None and ref.startswith(FETCH_PREFIX):
        refs.apply(repo.layout.common_dir, [refs.RefUpdate(ref, None, None)], message="gitxact land: done")


# -- building ----------------------------------------------------------------------------------


def head(repo: Repo, wt: Path) -> str:
    tip = git.rev_parse(wt, "HEAD")
    if tip is None:  # pragma: no cover - the worktree was made at a commit
        raise OperationFailedError(f"the candidate worktree {wt} has no HEAD")
    return tip


def apply(repo: Repo, wt: Path, tip: str, *, strategy: Strategy, branch: str, target: str) -> Applied:
    """Put the commits of *tip* not yet in the candidate on top of it, as *strategy* says.

    A conflict is undone at once (``--abort``), leaving the candidate as it was, and
    reported with the paths; so one branch that conflicts does not spoil a batch.
    """
    onto = head(repo, wt)
    if repo.git(["merge-base", "--is-ancestor", tip, onto], cwd=wt, check=False).ok:
        return Applied(already=True)
    if strategy == "rebase":
        # --onto X X TIP: replay X..TIP on X; when X is already under TIP git keeps TIP's
        # commits as they are (a fast-forward), so the agent's branch ends up contained.
        args = ["rebase", "--no-update-refs", "--no-autostash", "--onto", onto, onto, tip]
        abort = ["rebase", "--abort"]
    else:
        args = ["merge", "--no-edit", "--no-verify", "-m", f"Merge branch '{branch}' into {target}", tip]
        abort = ["merge", "--abort"]
    result = repo.git(args, cwd=wt, check=False, env=_QUIET)
    if not result.ok:
        conflicts = repo.git(["diff", "--name-only", "--diff-filter=U", "-z"], cwd=wt, check=False).zfields()
        repo.git(abort, cwd=wt, check=False)
        # A rebase given a commit to rebase aborts back to *that* commit, not to where the
        # candidate was: put the candidate back explicitly.
        repo.git(["reset", "--quiet", "--hard", onto], cwd=wt)
        if conflicts:
            return Applied(conflicts=sorted(set(conflicts)))
        raise GitError(result.argv, result.returncode, result.stderr + result.stdout)
    commits = repo.git(["rev-list", "--reverse", f"{onto}..HEAD"], cwd=wt).lines()
    if strategy == "rebase":
        originals = repo.git(["rev-list", "--reverse", "--no-merges", f"{onto}..{tip}"], cwd=wt).lines()
        landed_as = dict(integration.match_rewritten(wt, originals, commits))
    else:  # a merge puts the branch's own commits on the target as they are
        landed_as = {c: c for c in repo.git(["rev-list", f"{onto}..{tip}"], cwd=wt).lines()}
    return Applied(commits=commits, landed_as=landed_as)


# -- moving the target -------------------------------------------------------------------------


def checked_out_at(repo: Repo, target: str) -> Path | None:
    """The worktree that has the local *target* checked out (git lets only one), if any."""
    entries = registration.registrations(repo)
    path = registration.checked_out_at(entries, target)
    return Path(path) if path is not None and not entries[path].bare else None


def ensure_fast_forward(repo: Repo, old: str, new: str) -> None:
    """The last guard before a target moves: never anywhere but forward from *old*."""
    if not repo.git(["merge-base", "--is-ancestor", old, new], cwd=repo.layout.common_dir, check=False).ok:
        raise OperationFailedError(f"the candidate {new[:12]} does not contain the target's tip {old[:12]}: not moved")


def move_local(repo: Repo, target: str, old: str, new: str, message: str) -> None:
    """Compare-and-swap the local *target*, as the lander's own identity, not as gitxact.

    The update carries who acts (:func:`boundary.mover_env`) and no internal marker, so the
    installed reference-transaction hook refuses it when *target* is another agent's leased
    branch; its refusal is reported as the boundary's (exit 3, ``leased_by_other``).
    """
    ensure_fast_forward(repo, old, new)
    update = refs.RefUpdate(f"refs/heads/{target}", new, old)
    try:
        refs.apply(repo.layout.common_dir, [update], message=message, env=boundary.mover_env(repo), internal=False)
    except refs.RefConflictError as exc:
        raise TargetMovedError(f"{target} moved outside the queue") from exc
    except GitError as exc:
        if not boundary.vetoed(exc):
            raise
        raise boundary.LeasedByOtherError(
            f"refused to land onto {target}: the reference-transaction hook refused the move: {exc.stderr.strip()}",
            hint="land onto a branch of your own",
        ) from exc


def move_remote(repo: Repo, remote: str, target: str, old: str, new: str) -> None:
    """``push --atomic --force-with-lease``: the remote moves only from *old*, which is always
    an ancestor of *new*, so this is a fast-forward or nothing."""
    ensure_fast_forward(repo, old, new)
    args = [
        "push",
        "--atomic",
        "--porcelain",
        f"--force-with-lease=refs/heads/{target}:{old}",
        remote,
        f"{new}:refs/heads/{target}",
    ]
    # As the lander, not as gitxact: a remote that is a gitxact repository judges the push by who makes it.
    env = {**repo.locks.child_env(), **boundary.mover_env(repo)}
    result = git.run(args, repo.layout.common_dir, check=False, env=env, internal=False)
    if result.ok:
        return
    said = result.stdout + result.stderr
    if lease_reader.REFUSED_MARK in said:
        raise boundary.LeasedByOtherError(f"refused to land onto {target} of {remote}: {said.strip()}")
    if any(marker in said for marker in _MOVED_MARKERS):
        raise TargetMovedError(f"{target} on {remote} moved outside the queue")
    raise GitError(result.argv, result.returncode, said)


def sync_checked_out(repo: Repo, wt: Path, old: str, new: str) -> str | None:
    """Bring the worktree that has the target checked out from *old* to *new*, as
    ``receive.denyCurrentBranch=updateInstead`` would: a two-way ``read-tree -m -u``
    that carries uncommitted changes along and refuses to overwrite any. Returns a
    warning when it could not (the target has moved; that worktree then shows the
    difference as uncommitted changes until someone runs the command it names)."""
    if not repo.git(["diff-index", "--cached", "--quiet", old, "--"], cwd=wt, check=False).ok:
        return None  # its index is not the old tip's: someone already moved it on (or recover did)
    result = repo.git(["read-tree", "-m", "-u", old, new], cwd=wt, check=False)
    if result.ok:
        return None
    return f"{wt} was not brought along: {result.stderr.strip()}; run `git -C {wt} read-tree -m -u {old} {new}`"


def can_sync(repo: Repo, wt: Path, old: str, new: str) -> str | None:
    """Why the worktree that has the target checked out could not follow it from *old* to
    *new* (its uncommitted changes are in the way), or ``None``: asked before the move."""
    repo.git(["update-index", "-q", "--refresh"], cwd=wt, check=False)
    result = repo.git(["read-tree", "-m", "-u", "-n", old, new], cwd=wt, check=False)
    if result.ok:
        return None
    detail = result.stderr.strip().splitlines()
    return detail[0] if detail else "its uncommitted changes are in the way"


def holding_worktree(repo: Repo, worktree_id: str, body: Callable[[], T]) -> T:
    """Run *body* holding *worktree_id*'s lock, taken in a thread of its own.

    The lander holds its queue's resource lock, and the hierarchy puts worktree locks
    before resources; a thread has locks of its own, so the worktree lock is taken
    there in order. It cannot deadlock with the queue: nobody holding a worktree lock
    waits for a landing queue (a ``land`` run under that worktree's lock inherits it).
    """
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with repo.locks.worktree(worktree_id):
                outcome.append(body())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as is
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"land-{worktree_id}")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return outcome[0]


def worktree_id_of(repo: Repo, path: Path) -> str:
    if os.path.realpath(path) == os.path.realpath(repo.layout.main_worktree or ""):
        return "main"
    found = registration.worktree_id_of(path)
    if found is None:
        raise OperationFailedError(f"{path} is not a worktree of this repository")
    return found
