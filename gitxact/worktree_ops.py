"""The git and filesystem steps of a lease's worktree, each small and each safe to redo.

:mod:`gitxact.worktrees` (acquire/release) and :mod:`gitxact.reaper` (reap/repair)
compose these under the repository lock; nothing here takes a lock, and nothing
here decides policy. Repository-wide git work runs in the common dir so it does not
depend on which worktree the caller stands in (or on the main worktree existing).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from gitxact import config, git, refs, snapshots
from gitxact.errors import GitError, InvalidNameError, OperationFailedError, RefusedError, UsageError
from gitxact.leases import LEASES_LOCK, Lease, leases_file

if TYPE_CHECKING:
    from gitxact.workspace import Workspace

SNAPSHOT_PREFIX = "refs/gitxact/snapshots/"
LOCK_REASON_PREFIX = "gitxact lease "
_MAX_SUFFIX = 1000


# -- names -----------------------------------------------------------------------------------


def validate_branch(name: str) -> str:
    """A branch name the user passed with ``--branch``: git's rules, plus no option look-alikes.

    ``refs/heads/<name>`` goes through ``git check-ref-format`` (which also refuses
    ``@{``, ``..``, spaces, control characters). A leading ``-`` would read as an option
    to later git commands, ``HEAD`` and ``refs/...`` as something other than a branch.
    """
    shown = repr(name) if name else "''"
    if (
        not name
        or name.startswith("-")
        or name == "HEAD"
        or name.startswith("refs/")
        or not git.check_ref_format(f"refs/heads/{name}")
    ):
        raise InvalidNameError(
            f"invalid branch name {shown}",
            hint="give a plain branch name git accepts (git check-ref-format --branch), e.g. feature/x",
        )
    return name


def resolve_base(ws: Workspace, base: str | None, main: git.WorktreeEntry | None = None) -> tuple[str, str]:
    """``(label, commit)`` of the base: the name as given when it is a local or remote
    branch (so ahead/behind follows it as it moves), else the commit id.

    Default: what the main worktree has checked out, read from *main* (its entry in
    ``git worktree list``, which the caller has anyway) when given.
    """
    cwd = ws.layout.common_dir
    if base is None:
        if main is not None and main.head and not main.bare:
            label = main.branch.removeprefix("refs/heads/") if main.branch else main.head
            return label, main.head
        commit = git.rev_parse(cwd, "HEAD^{commit}")
        if commit is None:
            raise UsageError("the repository has no commit yet (unborn HEAD)", hint="commit something, or pass --base")
        symbolic = git.run(["symbolic-ref", "-q", "HEAD"], cwd, check=False, read_only=True)
        label = symbolic.stdout.strip().removeprefix("refs/heads/") if symbolic.ok else commit
        return label or commit, commit
    if not base or base.startswith("-") or "\n" in base:
        raise UsageError(f"invalid --base {base!r}", hint="name a branch, tag or commit")
    commit = git.rev_parse(cwd, f"{base}^{{commit}}")
    if commit is None:
        raise UsageError(f"--base {base!r} does not name a commit", hint="name a branch, tag or commit")
    full = git.run(["rev-parse", "--symbolic-full-name", "--end-of-options", base], cwd, check=False, read_only=True)
    # git 2.39 echoes ``--end-of-options`` itself in this mode: the answer is the last line.
    named = full.lines()[-1] if full.ok and full.lines() else ""
    if named.startswith(("refs/heads/", "refs/remotes/")):
        return base, commit  # a branch: ahead/behind follows it as it moves
    return commit, commit


# -- paths -----------------------------------------------------------------------------------


def worktree_root(ws: Workspace, entries: dict[str, git.WorktreeEntry] | None = None) -> Path:
    """The folder gitxact hands worktrees out from (not created here).

    Beside the main worktree (the first entry git lists; the common dir of a bare
    repository), unless ``gitxact.worktreeRoot`` says otherwise.
    """
    if entries is not None:
        first = next(iter(entries.values()), None)
        main = first.path if first is not None and not first.bare else ws.layout.common_dir
    else:
        main = ws.layout.main_worktree or ws.layout.common_dir
    return config.resolve_worktree_root(ws.settings, main)


def ensure_root(root: Path) -> None:
    """Create the root; refuse a symlink there (it could point the worktrees anywhere)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(root).st_mode):
            raise UsageError(
                f"worktree root {root} is a symbolic link; gitxact refuses to follow it",
                hint="point git config gitxact.worktreeRoot at a real folder",
            )
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OperationFailedError(f"cannot create worktree root {root}: {exc.strerror or exc}") from exc
    if not root.is_dir() or root.is_symlink():
        raise UsageError(f"worktree root {root} is not a folder", hint="fix git config gitxact.worktreeRoot")


def candidate_paths(root: Path, agent: str) -> Iterator[Path]:
    for n in range(1, _MAX_SUFFIX + 1):
        yield root / (agent if n == 1 else f"{agent}-{n}")


def free_path(root: Path, agent: str, taken: set[str]) -> Path:
    """The first candidate that does not exist and that neither git nor a lease knows of."""
    for path in candidate_paths(root, agent):
        if not os.path.lexists(path) and str(path) not in taken:
            return path
    raise OperationFailedError(f"no free worktree path for {agent!r} under {root}", hint="clean up the worktree root")


def claim(path: Path) -> bool:
    """Claim *path* atomically (``mkdir`` fails if anyone else made it first)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        return False
    return True


def remove_empty_dir(path: Path) -> bool:
    """Remove a claimed folder git never filled; a non-empty one is left for a person."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


# -- git's registry --------------------------------------------------------------------------


def registrations(ws: Workspace) -> dict[str, git.WorktreeEntry]:
    """git's worktrees by path (as git prints it)."""
    return {str(entry.path): entry for entry in git.list_worktrees(ws.layout.common_dir)}


def checked_out_at(entries: dict[str, git.WorktreeEntry], branch: str) -> str | None:
    full = f"refs/heads/{branch}"
    for path, entry in entries.items():
        if entry.branch == full:
            return path
    return None


def lock_reason(agent: str, pid: int, host: str) -> str:
    return f"{LOCK_REASON_PREFIX}{agent} (owner pid {pid} on {host})"


def add_worktree(ws: Workspace, path: Path, branch: str, start: str, *, create: bool, reason: str) -> None:
    """``git worktree add --lock``: created and locked in one step, so a ``prune`` can
    never catch it in between. *start* is a commit id (new branch) or the branch itself."""
    args = ["worktree", "add", "--lock", "--reason", reason]
    args += ["-b", branch, str(path), start] if create else [str(path), branch]
    try:
        ws.git(args, cwd=ws.layout.common_dir)
    except GitError as exc:
        if "already checked out" in exc.stderr or "already used by worktree" in exc.stderr:
            raise RefusedError(f"branch {branch!r} is checked out elsewhere: {exc.stderr.strip()}") from exc
        raise


def admin_dir_of(path: Path) -> Path | None:
    """The admin folder (``<common>/worktrees/<id>``) named by *path*'s ``.git`` file."""
    try:
        text = (path / ".git").read_text().strip()
    except OSError:
        return None
    if not text.startswith("gitdir: "):
        return None
    return Path(text.removeprefix("gitdir: "))


def worktree_id_of(path: Path) -> str | None:
    """git's id of the linked worktree at *path*, from its ``.git`` file."""
    admin = admin_dir_of(path)
    return admin.name if admin is not None else None


def is_registered(ws: Workspace, path: Path) -> bool:
    """Whether git lists the worktree at *path*.

    A folder whose ``.git`` file names an existing admin folder is one git lists; only
    otherwise (a folder gone or broken) is git asked, which spares ``release`` a
    ``git worktree list`` on its common path.
    """
    admin = admin_dir_of(path)
    if admin is not None and (admin / "gitdir").is_file():
        return True
    return any(os.path.realpath(p) == os.path.realpath(path) for p in registrations(ws))


def relock(ws: Workspace, path: Path, reason: str) -> None:
    ws.git(["worktree", "lock", "--reason", reason, str(path)], cwd=ws.layout.common_dir)


def remove_worktree(ws: Workspace, path: Path) -> None:
    """Unlock and remove in one git call (``-f -f``): no window where it is unlocked.

    Callers have already saved every not-ignored file (or found none), which is
    what the single ``-f`` check would protect; ignored files go with the folder, as
    they do with a plain ``git worktree remove``.
    """
    ws.git(["worktree", "remove", "--force", "--force", str(path)], cwd=ws.layout.common_dir)


# -- work and branches -----------------------------------------------------------------------


def save_dirty_work(ws: Workspace, lease: Lease, *, dirty: bool | None = None) -> str | None:
    """Snapshot uncommitted and untracked work to ``refs/gitxact/snapshots/<agent>/<time>``.

    Returns the ref, or ``None`` when the worktree was clean (*dirty* passes on what
    the caller just found, under the same repository lock). The ref keeps the
    objects alive through ``gc``; ``gitxact`` never deletes it.
    """
    path = Path(lease.path)
    if not (snapshots.has_changes(path) if dirty is None else dirty):
        return None
    stamp = datetime.datetime.now(tz=datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    return save_work(ws, path, f"{lease.agent}/{stamp}", f"uncommitted work of {lease.agent}")


def save_work(ws: Workspace, path: Path, name: str, what: str) -> str:
    """Snapshot HEAD, index and every file of the worktree at *path* to ``refs/gitxact/snapshots/<name>``.

    The first free of *name*, ``-2``, ``-3``...: two savers never overwrite each other.
    """
    git_dir = Path(git.run(["rev-parse", "--absolute-git-dir"], path, read_only=True).stdout.strip())
    env = ws.locks.child_env()
    snap = snapshots.capture(path, git_dir, f"gitxact: {what} in {path}", env)
    for n in range(1, _MAX_SUFFIX + 1):
        ref = f"{SNAPSHOT_PREFIX}{name}" + ("" if n == 1 else f"-{n}")
        try:
            refs.apply(
                ws.layout.common_dir,
                [refs.RefUpdate(ref, snap.commit, refs.MUST_NOT_EXIST)],
                message=f"gitxact: save {what}",
                env=env,
            )
        except refs.RefConflictError:
            continue
        return ref
    raise OperationFailedError(f"could not name a snapshot ref for {what}")


def owns_branch(ws: Workspace, lease: Lease) -> bool:
    """gitxact may delete only branches it made, or the agent's own ``<prefix><agent>``."""
    return lease.branch_created or lease.branch == f"{ws.settings.branch_prefix}{lease.agent}"


def delete_branch_if_merged(ws: Workspace, branch: str) -> tuple[bool, str | None]:
    """Delete *branch* if every commit on it is on another branch too.

    Returns ``(deleted, why_kept)``. One ``for-each-ref --contains`` answers all three
    questions (the tip, which branches contain it, where it is checked out); the
    delete is a compare-and-swap against that tip, so a commit landing in between
    keeps the branch.
    """
    cwd = ws.layout.common_dir
    full = f"refs/heads/{branch}"
    result = git.run(
        ["for-each-ref", f"--contains={full}", "--format=%(objectname) %(refname) %(worktreepath)", "refs/heads/"],
        cwd,
        check=False,
        read_only=True,
    )
    tip: str | None = None
    others = 0
    for line in result.lines():
        oid, _, rest = line.partition(" ")
        name, _, where = rest.partition(" ")
        if name == full:
            tip = oid
            if where:
                return False, f"branch is checked out at {where}"
        else:
            others += 1
    if tip is None:
        return False, "branch no longer exists"
    if not others:
        return False, f"its commits are on no other branch (tip {tip[:12]}); kept so no work is lost"
    try:
        refs.apply(cwd, [refs.RefUpdate(full, None, tip)], message="gitxact: lease ended", env=ws.locks.child_env())
    except refs.RefConflictError:
        return False, "branch moved while it was being deleted; kept"
    return True, None


# -- records (read-modify-write under the leases lock) ----------------------------------------


def save_record(ws: Workspace, lease: Lease) -> None:
    file = leases_file(ws)
    with ws.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        state.leases[lease.agent] = lease
        file.save(state)


def drop_record(ws: Workspace, lease: Lease) -> bool:
    """Remove *lease*'s record, only if it is still that lease (same token hash)."""
    file = leases_file(ws)
    with ws.locks.resource(LEASES_LOCK):
        state = file.load(repair=True)
        current = state.leases.get(lease.agent)
        if current is None or current.token_hash != lease.token_hash:
            return False
        del state.leases[lease.agent]
        file.save(state)
    return True


def load_records(ws: Workspace) -> dict[str, Lease]:
    with ws.locks.resource(LEASES_LOCK):
        return dict(leases_file(ws).load(repair=True).leases)
