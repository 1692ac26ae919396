"""The everyday git of an agent's own worktree, as tools: commit, diff, log, sync.

``commit`` and ``sync`` change the worktree, so they run as the agent's own ``gx``
would (a ``gx`` child in the worktree, ``GITXACT_AGENT`` set): the same locks,
the same guard, the same hooks, and nothing of git's output reaches the protocol's
stdout (it is captured). ``diff`` and ``log`` only read, with ``GIT_OPTIONAL_LOCKS=0``,
and are bounded: an agent's context is small.

A sync never leaves a rebase or merge half-done unless asked: on a conflict it is
aborted (``--abort`` puts HEAD, index and files back as they were before it began; a
worktree with uncommitted changes is refused first, since ``merge --abort`` cannot
always give those back) and the conflicting paths are reported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from gitxact.core.documents import Document
from gitxact.errors import EXIT_FAILED, EXIT_REFUSED, OperationFailedError, UsageError
from gitxact.git.run import REPO_LOCATING_VARS
from gitxact.leases.reader import TOKEN_ENV
from gitxact.leases.records import Lease
from gitxact.mcp.replies import CONFLICT, DIRTY, TIMEOUT, ToolRefusal
from gitxact.tx import staging
from gitxact.util import process
from gitxact.util.startup import AGENT_ENV
from gitxact.workspace import Workspace

#: ``gx`` as bin/gx runs it (its fast path, not the click CLI of ``gitxact git``), by this interpreter.
GX = [sys.executable, "-c", "import sys; from gitxact.gx.main import main; sys.exit(main())"]
#: One gx child (a commit with its hooks, a rebase) at most this long.
GX_TIMEOUT = 600.0
#: Output bounds: what a tool returns by default, and the most it returns when asked.
DIFF_BYTES, MAX_DIFF_BYTES = 64 * 1024, 1024 * 1024
LOG_COUNT, MAX_LOG_COUNT = 20, 200


class CommitDoc(Document):
    commit: str
    parent: str | None
    branch: str
    paths: list[str]
    subject: str


class FileStat(BaseModel):
    path: str
    #: ``None`` for a binary file (git's numstat shows ``-``).
    added: int | None
    deleted: int | None


class DiffDoc(Document):
    base: str
    #: What the diff compares the base with: ``worktree`` (committed and uncommitted work).
    against: str
    files: list[FileStat]
    #: Files git does not track yet (not in the diff; commit them to include them).
    untracked: list[str]
    patch: str
    truncated: bool
    bytes: int


class LogEntry(BaseModel):
    commit: str
    parents: list[str]
    author: str
    time: int
    subject: str


class LogDoc(Document):
    range: str
    commits: list[LogEntry]
    truncated: bool


class SyncDoc(Document):
    branch: str
    onto: str
    onto_tip: str
    strategy: str
    head_before: str
    head: str
    #: True when the branch now contains the target's tip.
    synced: bool
    conflicts: list[str] = Field(default_factory=list)
    #: True when a conflicting rebase or merge was left in progress, as asked (``keep_conflict``).
    kept: bool = False
    next_steps: list[str] = Field(default_factory=list)
    output: str = ""


def gx(ws: Workspace, agent: str, token: str | None, args: list[str]) -> tuple[int, str]:
    """``gx ARGS`` in the worktree as the agent: its exit status and its output (stdout and stderr)."""
    env = {name: value for name, value in os.environ.items() if name not in REPO_LOCATING_VARS}
    env[AGENT_ENV] = agent
    env["GIT_EDITOR"] = "true"  # no terminal to edit in: git's prepared message is kept (rebase --continue)
    if token:
        env[TOKEN_ENV] = token
    worktree = ws.layout.require_worktree()
    proc = process.start([*GX, *args], env=env, cwd=worktree, capture=True)
    try:
        out, _ = proc.communicate(timeout=GX_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise ToolRefusal(f"gx {args[0]} did not finish in {GX_TIMEOUT:.0f}s", reason=TIMEOUT, exit_code=75) from None
    return process.exit_status(proc.returncode), out.decode("utf-8", "replace")


def _gx_checked(ws: Workspace, agent: str, token: str | None, args: list[str]) -> str:
    code, out = gx(ws, agent, token, args)
    if code != 0:
        raise _gx_failed(args, code, out)
    return out


def _gx_failed(args: list[str], code: int, out: str) -> ToolRefusal:
    reason = {EXIT_REFUSED: "refused", 75: TIMEOUT}.get(code, "git_failed")
    return ToolRefusal(f"gx {' '.join(args[:1])} failed: {_tail(out)}", reason=reason, exit_code=code or 1)


def commit(ws: Workspace, agent: str, token: str | None, paths: list[str], message: str) -> CommitDoc:
    """Commit exactly *paths* (new, changed and deleted files alike) with *message*, as one
    step: other staged changes stay staged and out, and a commit that is refused (a hook,
    the guard, nothing to commit) leaves the index exactly as it was.

    ``git commit --only -- PATHS`` commits the paths' files as they are on disk through an
    index of its own and updates the real one only once the commit is made; it takes only
    paths git knows, so new files are first added as intent-to-add (an entry with no
    content) and, if the commit is refused, removed again: they were untracked before.
    """
    if not message.strip():
        raise UsageError("the commit message is empty")
    doing = _in_progress(ws)
    if doing is not None:  # `git commit -- PATHS` would commit mid-rebase, or refuse mid-merge
        raise ToolRefusal(
            f"a {doing} is in progress in this worktree",
            reason="in_progress",
            exit_code=EXIT_REFUSED,
            hint="finish it with sync_continue (or give it up with sync_abort) first",
        )
    resolved = staging.resolve_paths(ws, paths)
    specs = staging.pathspecs(resolved)
    parent = _rev(ws, "HEAD")
    untracked = ws.git(["ls-files", "-z", "--others", "--exclude-standard", "--", *specs], read_only=True)
    new = staging.pathspecs(untracked.zfields())
    args = ["commit", "--quiet", "--only", f"--message={message}", "--", *specs]
    try:
        if new:
            _gx_checked(ws, agent, token, ["add", "--intent-to-add", "--", *new])
        code, out = gx(ws, agent, token, args)
        if code != 0:
            raise _gx_failed(args, code, out)
    except ToolRefusal as refusal:
        # Refused, failed half-way (a sparse lease's path outside its cone) or timed out: the
        # index as it was, the new paths untracked again, unless git made the commit after all.
        if new and _rev(ws, "HEAD") == parent and not _untrack(ws, agent, token, new):
            refusal.message += "; the new paths stay added as intent-to-add (`git rm --cached` them)"
        raise
    head = _rev(ws, "HEAD")
    if head is None or head == parent:
        raise OperationFailedError("git made no commit", hint="check `status`: the paths may hold no change")
    return CommitDoc(
        commit=head, parent=parent, branch=_branch(ws), paths=resolved, subject=message.strip().splitlines()[0]
    )


def _untrack(ws: Workspace, agent: str, token: str | None, new: list[str]) -> bool:
    """Take *new* (untracked before the commit) out of the index again; whether that worked."""
    try:
        return gx(ws, agent, token, ["rm", "--cached", "--quiet", "--ignore-unmatch", "--", *new])[0] == 0
    except ToolRefusal:
        return False


def diff(ws: Workspace, lease: Lease, ref: str | None, paths: list[str] | None, max_bytes: int) -> DiffDoc:
    """The worktree (committed and uncommitted) against *ref*, or against the lease's base."""
    bound = _bounded(max_bytes, DIFF_BYTES, MAX_DIFF_BYTES, "max_bytes")
    base = _resolve(ws, ref) if ref is not None else (lease.base_commit or _resolve(ws, lease.base))
    specs = staging.pathspecs(staging.resolve_paths(ws, paths)) if paths else []
    common = ["--no-color", "--no-ext-diff", "--no-textconv", base, "--", *specs]
    stats = ws.git(["diff", "--numstat", "-z", *common], read_only=True).zfields()
    patch = ws.git(["diff", *common], read_only=True).stdout
    untracked = ws.git(["ls-files", "-z", "--others", "--exclude-standard", "--", *specs], read_only=True).zfields()
    raw = patch.encode("utf-8", "surrogateescape")
    return DiffDoc(
        base=base,
        against="worktree",
        files=_numstat(stats),
        untracked=untracked,
        patch=raw[:bound].decode("utf-8", "replace"),
        truncated=len(raw) > bound,
        bytes=len(raw),
    )


def log(ws: Workspace, lease: Lease, ref: str | None, max_count: int) -> LogDoc:
    """*ref*'s history, or by default the lease's own commits (base..HEAD), newest first."""
    bound = _bounded(max_count, LOG_COUNT, MAX_LOG_COUNT, "max_count")
    if ref is None:
        base = lease.base_commit or _resolve(ws, lease.base)
        shown, revs = f"{base[:12]}..HEAD", [f"{base}..HEAD"]
    else:
        shown, revs = ref, [_resolve(ws, ref)]
    out = ws.git(
        ["log", "-z", f"--max-count={bound + 1}", "--format=%H%x1f%P%x1f%an%x1f%at%x1f%s", *revs, "--"],
        read_only=True,
    ).zfields()
    entries = []
    for record in out[:bound]:
        commit_id, parents, author, when, subject = record.split("\x1f", 4)
        entries.append(
            LogEntry(commit=commit_id, parents=parents.split(), author=author, time=int(when), subject=subject)
        )
    return LogDoc(range=shown, commits=entries, truncated=len(out) > bound)


def sync(
    ws: Workspace,
    agent: str,
    token: str | None,
    onto: str,
    *,
    strategy: Literal["rebase", "merge"],
    keep_conflict: bool,
) -> SyncDoc:
    """Bring the branch up to date with *onto*; a conflict aborts it (or, asked, is left to resolve)."""
    from gitxact.land.candidate import check_target
    from gitxact.land.foresight import target_tip

    target = check_target(onto)
    tip = target_tip(ws, target)
    branch = _branch(ws)
    before = _rev(ws, "HEAD")
    if before is None:
        raise UsageError("the branch has no commit yet")
    if _in_progress(ws) is not None:
        raise ToolRefusal(
            f"a {_in_progress(ws)} is in progress in this worktree",
            reason="in_progress",
            exit_code=EXIT_REFUSED,
            hint="resolve it and call sync_continue, or give it up with sync_abort",
        )
    dirty = ws.git(["status", "--porcelain", "-z", "--untracked-files=no"], read_only=True).stdout
    if dirty:
        raise ToolRefusal(
            "the worktree has uncommitted changes: a sync that conflicts could not give them back",
            reason=DIRTY,
            exit_code=EXIT_REFUSED,
            hint="commit them first (the commit tool), or keep them in a transaction savepoint",
        )
    args = ["rebase", tip] if strategy == "rebase" else ["merge", "--no-edit", f"refs/heads/{target}"]
    code, out = gx(ws, agent, token, args)
    doc = SyncDoc(
        branch=branch, onto=target, onto_tip=tip, strategy=strategy, head_before=before, head=before, synced=False
    )
    if code == 0:
        doc.head = _rev(ws, "HEAD") or before
        doc.synced = _is_ancestor(ws, tip, doc.head)
        return doc
    doc.output = _tail(out)
    doing = _in_progress(ws)
    if doing is None:  # refused before it began (the guard, a lock): nothing changed
        reason = {EXIT_REFUSED: "refused", 75: TIMEOUT}.get(code, "git_failed")
        raise ToolRefusal(f"gx {strategy} failed: {doc.output}", reason=reason, exit_code=code, doc=doc)
    doc.conflicts = ws.git(["diff", "--name-only", "--diff-filter=U", "-z"], read_only=True).zfields()
    if keep_conflict and doc.conflicts:
        doc.kept = True
        doc.head = _rev(ws, "HEAD") or before
        doc.next_steps = [
            f"edit {', '.join(doc.conflicts)} to the content you want (no conflict markers left)",
            "sync_continue (or sync_abort to give it up)",
            f"land onto {target}",
        ]
        message = f"{strategy} onto {target} stopped on conflicts in: {', '.join(doc.conflicts)}; left to resolve"
    else:
        _gx_checked(ws, agent, token, [doing, "--abort"])
        doc.head = _rev(ws, "HEAD") or before
        if doc.head != before or _in_progress(ws) is not None:
            raise OperationFailedError(f"the {strategy} could not be aborted cleanly: {doc.output}")
        if not doc.conflicts:  # stopped for another reason (an untracked file in the way): said as git said it
            raise ToolRefusal(
                f"{strategy} onto {target} stopped: {doc.output}; aborted, nothing changed",
                reason="git_failed",
                exit_code=EXIT_FAILED,
                doc=doc,
            )
        doc.next_steps = [f"sync again with keep_conflict=true to resolve them (onto {target})"]
        message = f"{strategy} onto {target} conflicts in: {', '.join(doc.conflicts)}; aborted, nothing changed"
    raise ToolRefusal(message, reason=CONFLICT, exit_code=EXIT_REFUSED, doc=doc)


def sync_continue(ws: Workspace, agent: str, token: str | None) -> SyncDoc:
    """After a sync left to resolve: stage the resolved files, go on with the rebase (or conclude the merge)."""
    doing = _in_progress(ws)
    if doing is None:
        raise ToolRefusal("no sync is in progress in this worktree", reason="not_in_progress", exit_code=EXIT_REFUSED)
    unmerged = ws.git(["diff", "--name-only", "--diff-filter=U", "-z"], read_only=True).zfields()
    markers = [path for path in unmerged if _has_markers(ws, path)]
    if markers:
        raise ToolRefusal(
            f"conflict markers are still in: {', '.join(markers)}",
            reason=CONFLICT,
            exit_code=EXIT_REFUSED,
            hint="edit them to the content you want, then call sync_continue again",
        )
    if unmerged:
        _gx_checked(ws, agent, token, ["add", "--", *staging.pathspecs(unmerged)])
    code, out = gx(ws, agent, token, ["rebase", "--continue"] if doing == "rebase" else ["commit", "--no-edit"])
    head = _rev(ws, "HEAD") or ""
    doc = SyncDoc(
        branch=_branch(ws), onto="", onto_tip="", strategy=doing, head_before=head, head=head, synced=code == 0
    )
    if code != 0:
        doc.output = _tail(out)
        doc.conflicts = ws.git(["diff", "--name-only", "--diff-filter=U", "-z"], read_only=True).zfields()
        doc.kept = _in_progress(ws) is not None
        raise ToolRefusal(
            f"the {doing} stopped again: {doc.output}",
            reason=CONFLICT if doc.conflicts else "git_failed",
            exit_code=EXIT_REFUSED,
            doc=doc,
        )
    return doc


def sync_abort(ws: Workspace, agent: str, token: str | None) -> SyncDoc:
    """Give up a sync left to resolve: HEAD, index and files as they were before it began."""
    doing = _in_progress(ws)
    if doing is None:
        raise ToolRefusal("no sync is in progress in this worktree", reason="not_in_progress", exit_code=EXIT_REFUSED)
    _gx_checked(ws, agent, token, [doing, "--abort"])
    head = _rev(ws, "HEAD") or ""
    return SyncDoc(branch=_branch(ws), onto="", onto_tip="", strategy=doing, head_before=head, head=head, synced=False)


def _has_markers(ws: Workspace, path: str) -> bool:
    """Whether the worktree's file still holds git's conflict markers (``<<<<<<<`` at a line start)."""
    try:
        data = (ws.layout.require_worktree() / path).read_bytes()
    except OSError:
        return False  # deleted: the resolution may be the deletion
    return data.startswith(b"<<<<<<< ") or b"\n<<<<<<< " in data


def _in_progress(ws: Workspace) -> str | None:
    """``rebase`` or ``merge`` when one stopped in this worktree (git's own state files say)."""
    git_dir = Path(ws.layout.git_dir)
    if (git_dir / "rebase-merge").exists() or (git_dir / "rebase-apply").exists():
        return "rebase"
    return "merge" if (git_dir / "MERGE_HEAD").exists() else None


def _rev(ws: Workspace, rev: str) -> str | None:
    result = ws.git(["rev-parse", "--verify", "--quiet", "--end-of-options", rev], check=False, read_only=True)
    return result.stdout.strip() or None if result.ok else None


def _resolve(ws: Workspace, ref: str) -> str:
    """*ref* as a commit id; a ref that looks like an option or names no commit is refused."""
    if not ref or ref.startswith("-"):
        raise UsageError(f"invalid ref {ref!r}")
    commit_id = _rev(ws, f"{ref}^{{commit}}")
    if commit_id is None:
        raise UsageError(f"{ref!r} names no commit", hint="name a branch, a tag or a commit id")
    return commit_id


def _branch(ws: Workspace) -> str:
    result = ws.git(["symbolic-ref", "-q", "--short", "HEAD"], check=False, read_only=True)
    return result.stdout.strip() if result.ok else "HEAD"


def _is_ancestor(ws: Workspace, commit_id: str, of: str) -> bool:
    return ws.git(["merge-base", "--is-ancestor", commit_id, of], check=False, read_only=True).ok


def _numstat(fields: list[str]) -> list[FileStat]:
    """``git diff --numstat -z``: ``added<TAB>deleted<TAB>path``, or for a rename ``a<TAB>d<TAB>`` then two paths."""
    stats, at = [], 0
    while at < len(fields):
        added, deleted, path = fields[at].split("\t", 2)
        at += 1
        if not path and at + 1 < len(fields):  # a rename: the old path, then the new
            path, at = fields[at + 1], at + 2
        stats.append(
            FileStat(
                path=path, added=None if added == "-" else int(added), deleted=None if deleted == "-" else int(deleted)
            )
        )
    return stats


def _bounded(value: int, default: int, most: int, what: str) -> int:
    if value <= 0:
        return default
    if value > most:
        raise UsageError(f"{what} is at most {most}")
    return value


def _tail(output: str, lines: int = 6) -> str:
    kept = [line for line in output.strip().splitlines() if line.strip()]
    return " / ".join(kept[-lines:]) or "no output"
