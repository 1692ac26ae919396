"""``gitxact doctor``: cross-check gitxact's state against git and against itself.

Each check looks at one kind of thing (state files, lock queues, refs, worktrees,
journals), reports every inconsistency together with the repair it would make, and
with ``fix`` makes it. Repairs are idempotent: a second ``doctor --fix`` finds
nothing. Checks of features live with those features and are listed in
:data:`CHECKS`; this module owns only the framework and the checks of the
foundation (state files, lock records).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from gitxact.core.documents import Document
from gitxact.core.repo import STATE_DIR, Repo
from gitxact.health.state_files import model_for
from gitxact.locking import kernel, naming, tickets


@dataclass
class Finding:
    """One inconsistency and what to do about it."""

    check: str
    problem: str
    repair: str
    fixed: bool = False
    lost_data: bool = False  # the repair could not keep what the file held


class FindingDoc(BaseModel):
    check: str
    problem: str
    repair: str
    fixed: bool


class DoctorReport(Document):
    ok: bool
    fixed: bool
    findings: list[FindingDoc]


Check = Callable[[Repo, bool], list[Finding]]


def check_state_files(repo: Repo, fix: bool) -> list[Finding]:
    """Every registered state file verifies; a bad one is restored or, with no good backup, reset."""
    folder = repo.state_dir / STATE_DIR
    findings: list[Finding] = []
    if not folder.is_dir():
        return findings
    for path in sorted(folder.iterdir()):
        model = model_for(path.name)
        if model is None or path.is_dir():
            continue
        file = repo.store.file(path.name, model, subdir=STATE_DIR)
        health = file.check()
        if health.ok:
            continue
        if health.backup_ok:
            finding = Finding("state", f"{path.name} {health.reason}", f"restore {path.name} from its backup")
            if fix:
                with repo.locks.resource(_owner_lock(path.name)):
                    file.load(repair=True)
                finding.fixed = True
        else:
            finding = Finding(
                "state",
                f"{path.name} {health.reason}, and its backup is not usable",
                f"keep the damaged file as {path.name}.corrupt-* and start {path.name} afresh",
                lost_data=True,
            )
            if fix:
                with repo.locks.resource(_owner_lock(path.name)):
                    file.quarantine()
                    with contextlib.suppress(FileNotFoundError):
                        file.backup.unlink()
                    file.save(model())
                finding.fixed = True
        findings.append(finding)
    return findings


def _owner_lock(name: str) -> str:
    """The resource lock a state file's writers take (tracker, leases, meta, recover).

    Journals are written under their worktree's lock, which the exclusive repository
    lock held by ``--fix`` already excludes; their resource name is then just a name.
    """
    return name.split(".", 1)[0] or "state"


def check_links(repo: Repo, fix: bool) -> list[Finding]:
    """Symbolic links in gitxact's own folders: it never follows one, so nothing works until it goes.

    Runs before any lock is taken (a linked lock file stops locking itself). Only the
    link is removed, never what it points at.
    """
    findings: list[Finding] = []
    state_dir = repo.state_dir
    folders = [state_dir, state_dir / "locks", state_dir / STATE_DIR, state_dir / "logs", state_dir / "events"]
    for folder in folders:
        if folder != state_dir and folder.is_symlink():
            found = [folder]
        else:
            try:
                found = [folder / e for e in sorted(os.listdir(folder)) if (folder / e).is_symlink()]
            except (FileNotFoundError, NotADirectoryError):
                continue
        for path in found:
            problem = f"{path} is a symbolic link; gitxact never follows one"
            findings.append(_removal("links", problem, "remove the link", path, fix))
    return findings


def check_lock_records(repo: Repo, fix: bool) -> list[Finding]:
    """Tickets and holder records of dead processes; temp files left by crashed writers."""
    findings: list[Finding] = []
    lock_dir = repo.locks.lock_dir
    for key in repo.locks.known_keys():
        queue = repo.locks.queue_dir(key)
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(queue)):
                parsed = tickets.TicketName.parse(entry)
                if parsed is None and not entry.startswith(naming.CHOOSING_PREFIX):
                    continue
                path = Path(queue) / entry
                if _owner_alive(path):
                    continue
                what = "holder record" if parsed is not None and parsed.holding else "queue ticket"
                finding = Finding("locks", f"{key.slug}: {what} {entry} of a dead process", "remove it")
                if fix:
                    tickets.probe_alive(str(path))  # removes it under its own flock
                    finding.fixed = True
                findings.append(finding)
    for folder in (repo.state_dir / STATE_DIR, Path(lock_dir)):
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(folder)):
                if ".tmp-" not in entry:
                    continue
                path = folder / entry
                with contextlib.suppress(FileNotFoundError):
                    if time.time() - path.lstat().st_mtime < 60:
                        continue  # a writer may be mid-write right now
                problem = f"temp file {entry} left by an interrupted write"
                findings.append(_removal("state", problem, "remove it", path, fix))
    return findings


def _removal(check: str, problem: str, repair: str, path: Path, fix: bool) -> Finding:
    """A finding whose repair is removing *path* (only the entry itself, never what a link points at)."""
    finding = Finding(check, problem, repair)
    if fix:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        finding.fixed = True
    return finding


def _owner_alive(path: os.PathLike[str]) -> bool:
    """Like :func:`lockqueue.probe_alive` but without removing anything (report mode)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        return True  # gone already: nothing to report
    except OSError:
        return True
    try:
        if kernel.try_lock(fd):
            kernel.unlock(fd)
            return str(path).rsplit("/", 1)[-1].startswith(naming.CHOOSING_PREFIX) and _recent(path)
        return True
    finally:
        os.close(fd)


def _recent(path: os.PathLike[str]) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime < 1.0
    except FileNotFoundError:
        return False


def check_journals(repo: Repo, fix: bool) -> list[Finding]:
    """Transactions whose process died mid-step: finished or rolled back as ``recover`` does."""
    from gitxact.tx.journal import all_journals, condition
    from gitxact.tx.recovery import replay_worktree

    findings: list[Finding] = []
    for worktree_id, journal in all_journals(repo).items():
        tx = journal.tx
        if tx is None or condition(tx) != "abandoned":
            continue
        finding = Finding(
            "transactions",
            f"transaction {tx.label()} in worktree {worktree_id!r} was interrupted",
            "finish or roll it back (what `gitxact recover` does)",
        )
        if fix:
            _, problems = replay_worktree(repo, worktree_id)
            finding.fixed = not problems
            if problems:
                finding.problem += ": " + "; ".join(problems)
        findings.append(finding)
    return findings


def check_savepoint_refs(repo: Repo, fix: bool) -> list[Finding]:
    """Savepoint refs that no journal accounts for (left by a crash before the journal knew them).

    Removed when a branch still holds their commit; otherwise they are the last name of
    that work, and are moved under ``refs/gitxact/snapshots/orphaned/`` instead, where
    work is kept on purpose.
    """
    from gitxact.git import refs
    from gitxact.git import run as git
    from gitxact.tx.journal import all_journals

    known: set[str] = set()
    for journal in all_journals(repo).values():
        for kept in journal.kept:
            known.update(kept.refs)
        if journal.tx is not None:
            for savepoint in journal.tx.savepoints:
                known.update(savepoint.refs())
            if journal.tx.step is not None and journal.tx.step.savepoint is not None:
                known.update(journal.tx.step.savepoint.refs())
    cwd = repo.layout.worktree or repo.layout.common_dir
    findings: list[Finding] = []
    for name, oid in sorted(refs.list_refs(cwd, "refs/gitxact/savepoints/").items()):
        if name in known:
            continue
        merged = git.run(["for-each-ref", "--count=1", "--contains", oid, "refs/heads/"], cwd, read_only=True)
        updates = [refs.RefUpdate(name, None, oid)]
        if merged.stdout.strip():
            finding = Finding("refs", f"{name} belongs to no transaction", "delete it (a branch holds its commit)")
        else:
            keep_as = "refs/gitxact/snapshots/orphaned/" + name.removeprefix("refs/gitxact/savepoints/")
            finding = Finding(
                "refs", f"{name} belongs to no transaction; no branch holds its commit", f"move it to {keep_as}"
            )
            updates.append(refs.RefUpdate(keep_as, oid, refs.MUST_NOT_EXIST))
        if fix:
            refs.apply(cwd, updates, message="gitxact doctor", env=repo.locks.child_env())
            finding.fixed = True
        findings.append(finding)
    return findings


def check_worktrees(repo: Repo, fix: bool) -> list[Finding]:
    """Leases whose owner died or expired, half-done acquires/releases, orphan
    registrations, missing folders, unlocked leased worktrees: what reap would end."""
    from gitxact.worktrees.manager import Worktrees

    doc = Worktrees(repo).reap(dry_run=not fix, claims=False)  # the server is check_backend's
    findings = [
        Finding("worktrees", f"{e.agent or e.path}: {e.reason}", e.action, fixed=fix and e.error is None)
        for e in doc.ended
    ]
    findings += [
        Finding("worktrees", f"the worktree leased to {agent} is not `git worktree lock`ed", "lock it", fixed=fix)
        for agent in doc.relocked
    ]
    return findings


def check_backend(repo: Repo, fix: bool) -> list[Finding]:
    """The coordination backend: settings that agree, and on PostgreSQL a reachable server,
    a current schema, this project's namespace, no holder record of an ended session."""
    from gitxact.backends.admin import check_backend as check

    return [Finding("backend", f.problem, f.repair, fixed=f.fixed) for f in check(repo, fix)]


#: Every check, in the order they run (foundation first, then features).
CHECKS: list[tuple[str, Check]] = [
    ("state files", check_state_files),
    ("lock records", check_lock_records),
    ("backend", check_backend),
    ("transactions", check_journals),
    ("worktrees", check_worktrees),
    ("savepoint refs", check_savepoint_refs),
]


def run(repo: Repo, *, fix: bool = False) -> DoctorReport:
    """Run every check; with *fix*, under the exclusive repository lock so no writer of
    the files being repaired runs at the same time (the tracker's, which takes no
    repository lock, is repaired under its own resource lock)."""
    findings: list[Finding] = check_links(repo, fix)  # before any lock: a linked lock file stops locking
    with repo.lock() if fix else contextlib.nullcontext():
        for _name, check in CHECKS:
            findings.extend(check(repo, fix))
    return DoctorReport(
        ok=not findings or all(f.fixed for f in findings),
        fixed=fix,
        findings=[FindingDoc(check=f.check, problem=f.problem, repair=f.repair, fixed=f.fixed) for f in findings],
    )
