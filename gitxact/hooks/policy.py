"""What gitxact's git hooks check: the lean code behind ``gitxact hook NAME``.

The hook scripts (``resources/hook-tmpl``, installed by :mod:`gitxact.hooks.install`) run this
module with ``python -I -S`` (no site-packages, ~1/3 of a normal start-up), because
the reference-transaction hook runs on every ref update of every git command. So it
imports the standard library and gitxact's stdlib-only modules, nothing else; leases
are read and checksum-verified by :mod:`gitxact.leases.reader`.

Rules (exit 3 refuses; git aborts the commit, the ref update or the auto-gc):

* ``pre-commit``: a commit is refused when ``GITXACT_AGENT`` names an agent other
  than the owner of the lease on this worktree; and while this worktree's transaction
  is rolling back or needs ``gitxact recover`` (:func:`transaction_blocks_commit`).
* ``reference-transaction`` (``prepared`` state only; stdin lines ``<old> <new> <ref>``):
  aborts the update of a leased branch from another agent's process (``GITXACT_AGENT``
  set and not the owner), the deletion of a leased branch, and the deletion of a
  ``refs/gitxact/*`` ref, unless gitxact itself makes the change (``GITXACT_INTERNAL``,
  set by :func:`gitxact.git.run.run` only). ``pack-refs`` moving a loose ref into
  ``packed-refs`` shows as a deletion too; it loses nothing and is let through.
* ``pre-auto-gc``: auto-gc is refused while any lease is active.

One Python per commit: ``pre-commit`` applies the branch rule too, to the branch HEAD
names, and vouches for it to the same git process's ``reference-transaction``
(:func:`vouch_for_commit`), whose script then stays in ``sh`` for that one update.

Hooks never take a gitxact lock and never run a git command that takes
``index.lock`` (git holds it during ``pre-commit``; ``GIT_INDEX_FILE`` may point at
``index.lock`` or ``next-index-*``), so they cannot deadlock against their caller.
A leases file that cannot be verified blocks auto-gc (skipping it loses nothing) but
only warns for commits and ref updates (refusing every commit until ``gitxact doctor
--fix`` helps nobody; the guard in ``gx`` still stops on it).
"""

from __future__ import annotations

import os
import sys

from gitxact.errors import EXIT_REFUSED, StateError
from gitxact.git import lite
from gitxact.leases import reader as lease_reader

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

    from gitxact.leases.reader import LeaseView

ZERO_OID_CHARS = frozenset("0")
#: In a worktree's git dir: ``<boot id> <pid> <start time> <branch>``, the branch a commit's
#: pre-commit check let that git process move (:func:`vouch_for_commit`); ``hook-tmpl`` reads it.
VOUCH_FILE = "gitxact-commit-vouch"
HOOKS = ("pre-commit", "pre-auto-gc", "reference-transaction")


def main(argv: Sequence[str] | None = None) -> int:
    """``gitxact hook NAME [ARGS...]`` (reads the ref updates from stdin for reference-transaction)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in HOOKS:
        _say(f"gitxact hook: expected one of {', '.join(HOOKS)}")
        return 2
    name, rest = args[0], args[1:]
    where = Location.find()
    if name == "pre-commit":
        return pre_commit(where)
    if name == "pre-auto-gc":
        return pre_auto_gc(where)
    state = rest[0] if rest else ""
    return reference_transaction(where, state, sys.stdin.read() if state == "prepared" else "")


class Location:
    """Where the hook runs: git dir, common dir and worktree, found without taking locks."""

    __slots__ = ("common_dir", "git_dir", "worktree")

    def __init__(self, git_dir: str, common_dir: str, worktree: str | None) -> None:
        self.git_dir = git_dir
        self.common_dir = common_dir
        self.worktree = worktree

    @property
    def worktree_id(self) -> str:
        same = os.path.realpath(self.git_dir) == os.path.realpath(self.common_dir)
        return "main" if same else os.path.basename(os.path.normpath(self.git_dir))

    @classmethod
    def find(cls, environ: dict[str, str] | None = None, cwd: str | None = None) -> Location:
        """git runs hooks at the worktree root (in the git dir when bare) and exports
        ``GIT_DIR`` in linked worktrees (absolute) but not always in the main one."""
        env = os.environ if environ is None else environ
        here = os.getcwd() if cwd is None else cwd
        worktree: str | None = None
        git_dir = env.get("GIT_DIR")
        if git_dir:
            git_dir = os.path.join(here, git_dir)
            worktree = os.path.join(here, env["GIT_WORK_TREE"]) if env.get("GIT_WORK_TREE") else here
        else:
            git_dir, worktree = _walk_up(here)
        common = git_dir
        try:
            with open(os.path.join(git_dir, "commondir"), encoding="utf-8") as handle:
                common = os.path.join(git_dir, handle.read().strip())
        except OSError:
            pass
        return cls(os.path.normpath(git_dir), os.path.normpath(common), worktree and os.path.normpath(worktree))


def _walk_up(start: str) -> tuple[str, str | None]:
    folder = start
    while True:
        dot_git = os.path.join(folder, ".git")
        if os.path.isdir(dot_git):
            return dot_git, folder
        if os.path.isfile(dot_git):
            with open(dot_git, encoding="utf-8") as handle:
                line = handle.readline().strip()
            if line.startswith("gitdir: "):
                return os.path.join(folder, line[len("gitdir: ") :]), folder
        if os.path.isfile(os.path.join(folder, "HEAD")) and os.path.isdir(os.path.join(folder, "objects")):
            return folder, None  # a bare repository (or a git dir)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    code, out = lite.capture(["rev-parse", "--absolute-git-dir"], lite.passthrough_env())  # takes no lock
    return (out.strip() if code == 0 else start), start


def _leases(where: Location, *, strict: bool) -> list[LeaseView]:
    try:
        return lease_reader.load(where.common_dir)
    except StateError as exc:
        if strict:
            raise
        _say(f"gitxact: warning: {exc.message}; lease checks skipped (hint: {exc.hint})")
        return []


def pre_commit(where: Location) -> int:
    blocker = transaction_blocks_commit(where.common_dir, where.worktree_id)
    if blocker is not None:
        _say(f"gitxact: commit refused: {blocker}")
        return EXIT_REFUSED
    agent = lease_reader.env_agent()
    token = lease_reader.env_token()
    if not (agent or token) or where.worktree is None:
        return 0
    leases = _leases(where, strict=False)
    owner = lease_of_worktree(leases, where)
    why = None if owner is None else lease_reader.trespass(owner.agent, owner.token_hash, agent, token)
    if owner is not None and why is not None:
        _say(
            f"gitxact: commit refused: this worktree ({owner.path}): {why}"
            "\nhint: commit from your own worktree (`gitxact worktree list`)"
        )
        return EXIT_REFUSED
    vouch_for_commit(where, leases, agent, token)
    return 0


def vouch_for_commit(where: Location, leases: list[LeaseView], agent: str | None, token: str | None) -> None:
    """Spare this commit's reference-transaction hook a second Python for the branch it moves.

    A commit's one ref update moves HEAD's branch, for the agent this check has just let
    commit; the hook would load and verify the leases again only to apply
    :func:`branch_refusal` to it. So when that branch passes the rule now, its name goes
    into the worktree's git dir (:data:`VOUCH_FILE`), keyed by the git process that runs
    both hooks (:func:`hook_git_process`). The hook script (``hook-tmpl``: ``vouched_branch``)
    skips Python only for that branch, updated (not deleted), by that same process: a
    ``--no-verify`` commit or a ``git branch -f`` ran no pre-commit of its own, and a
    HEAD switched to another branch meanwhile names another ref, so they get the full check.
    """
    ref = _head_branch(where.git_dir)
    process = hook_git_process() if ref is not None else None
    if ref is None or process is None or branch_refusal(leases, ref, agent, token) is not None:
        return
    path = os.path.join(where.git_dir, VOUCH_FILE)
    tmp = f"{path}.tmp-{os.getpid()}"
    try:  # replaced whole, so the hook never reads half a line; lost in a crash, it costs a check
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, f"{process} {ref}\n".encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        try:  # noqa: SIM105 - contextlib would add its imports to every hook run
            os.unlink(tmp)
        except OSError:
            pass


def hook_git_process() -> str | None:
    """``"<boot id> <pid> <start time>"`` of the git running this hook, as ``hook-tmpl`` reads it.

    git runs the hook script, which runs this Python: git is our grandparent. Boot, pid
    and start time together name one process for good (a pid alone is reused). Only the
    hooks that very process runs can match it; beneath the pre-commit framework our
    grandparent is the framework's hook, which runs no reference-transaction, so nothing
    there is spared. ``None`` without ``/proc``: nothing is vouched.
    """
    try:
        pid = _parent_pid(os.getppid())
        if pid is None:
            return None
        with open("/proc/sys/kernel/random/boot_id", "rb") as handle:
            boot = handle.read().strip()
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 1 :].split()  # field 3 (state) onwards: comm may hold spaces
    if not boot or len(fields) < 20:
        return None
    return b" ".join((boot, str(pid).encode(), fields[19])).decode()  # field 22: start time, clock ticks after boot


def _head_branch(git_dir: str) -> str | None:
    """The branch HEAD names (``refs/heads/...``), or ``None`` when detached or unreadable."""
    try:
        with open(os.path.join(git_dir, "HEAD"), encoding="utf-8") as handle:
            head = handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    ref = head.removeprefix("ref: ")
    return ref if ref != head and ref.startswith("refs/heads/") and " " not in ref else None


def transaction_blocks_commit(common_dir: str, worktree_id: str) -> str | None:
    """Why a commit in this worktree must wait for its transaction, or ``None``.

    See :func:`gitxact.tx.journal_reader.commit_blocker`: rolling back, a TDD commit or a
    savepoint drop half done, or an interrupted step waiting for ``gitxact recover``.
    An unreadable journal does not block (``recover``/``doctor`` report it).
    """
    from gitxact.tx import journal_reader

    try:
        return journal_reader.commit_blocker(common_dir, worktree_id)
    except StateError as exc:
        _say(f"gitxact: warning: {exc.message}")
        return None


def lease_of_worktree(leases: list[LeaseView], where: Location) -> LeaseView | None:
    """The genuine lease on the worktree the hook runs in: by worktree id, else by path."""
    for lease in leases:
        if lease.worktree_id is not None and lease.worktree_id == where.worktree_id and lease.genuine():
            return lease
    return lease_reader.for_path(leases, where.worktree) if where.worktree else None


def pre_auto_gc(where: Location) -> int:
    try:
        leases = _leases(where, strict=True)
    except StateError as exc:
        _say(f"gitxact: auto-gc skipped: {exc.message}")
        return EXIT_REFUSED
    if leases:
        listing = "".join(f"\n  {lease.describe()}" for lease in leases)
        _say(f"gitxact: auto-gc skipped while {len(leases)} lease(s) are active:{listing}")
        return EXIT_REFUSED
    return 0


def reference_transaction(where: Location, state: str, updates: str) -> int:
    if state != "prepared" or os.environ.get(lite.INTERNAL_ENV) == "1":
        return 0
    agent = lease_reader.env_agent()
    token = lease_reader.env_token()
    leases: list[LeaseView] | None = None
    problems: list[str] = []
    for line in updates.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3:
            continue
        old, new, ref = parts
        deleting = set(new) <= ZERO_OID_CHARS
        if deleting and _packing(where.common_dir, ref, old):
            continue
        if ref.startswith("refs/gitxact/"):
            if deleting:
                problems.append(f"{ref}: only gitxact deletes its own refs (they keep savepoints and snapshots alive)")
            continue
        if not ref.startswith("refs/heads/") or not (deleting or agent or token):
            continue
        if leases is None:
            leases = _leases(where, strict=False)
        if deleting:
            lease = lease_reader.for_branch(leases, ref)
            if lease is not None:
                problems.append(f"{ref}: the branch is leased to {lease.agent!r} (worktree {lease.path})")
        else:
            why = branch_refusal(leases, ref, agent, token)
            if why is not None:
                problems.append(f"{ref}: {why}")
    if problems:
        _say(f"{lease_reader.REFUSED_MARK}:\n  " + "\n  ".join(problems))
        _say("hint: leased branches and refs/gitxact/* change through their owner or gitxact itself")
        return EXIT_REFUSED
    return 0


def branch_refusal(leases: list[LeaseView], ref: str, agent: str | None, token: str | None) -> str | None:
    """Why a process acting for *agent* with *token* may not move branch *ref*, or ``None``."""
    lease = lease_reader.for_branch(leases, ref)
    return None if lease is None else lease_reader.trespass(lease.agent, lease.token_hash, agent, token)


def _packing(common_dir: str, ref: str, old: str) -> bool:
    """Whether a deletion is ``pack-refs`` dropping a loose ref it has just packed.

    Seen in the hook as ``<old> 0000 <ref>`` while the loose file still exists and
    ``packed-refs`` already holds the same value: nothing is lost. A real deletion of
    such a ref would also drop the packed copy, so the parent git must be pack-refs
    too (``git gc`` runs it as a child); where ``/proc`` cannot say, the files decide.
    """
    if set(old) <= ZERO_OID_CHARS or not os.path.isfile(os.path.join(common_dir, ref)):
        return False
    try:
        with open(os.path.join(common_dir, "packed-refs"), encoding="utf-8", errors="replace") as handle:
            packed = any(line.rstrip("\n") == f"{old} {ref}" for line in handle)
    except OSError:
        return False
    if not packed:
        return False
    lines = _ancestor_commands(3)  # python <- hook script <- git pack-refs
    return lines is None or any(b"pack-refs" in argv for argv in lines)


def _ancestor_commands(depth: int) -> list[list[bytes]] | None:
    """The argv of our parent, grandparent...; ``None`` where ``/proc`` is not there."""
    found: list[list[bytes]] = []
    pid: int | None = os.getppid()
    for _ in range(depth):
        if pid is None or pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                found.append(handle.read().split(b"\0"))
        except OSError:
            return found or None
        pid = _parent_pid(pid)
    return found


def _parent_pid(pid: int) -> int | None:
    """The parent of process *pid*, from ``/proc`` (field 4 of its ``stat``); ``None`` if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return int(stat[stat.rfind(b")") + 1 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


if __name__ == "__main__":
    raise SystemExit(main())
