"""``gitxact recover``: a list of named steps, each returning a report.

Recovery after a crash is the same sequence every time, run under the repository
lock held exclusive (nothing else in the repository runs meanwhile, so a step never
races the owner of what it repairs):

1. ``git-locks`` — remove git lock files whose owner is provably dead
   (:mod:`gitxact.gitlocks`); they would make every later step fail;
2. ``journals`` — finish or roll back every interrupted transaction
   (:mod:`gitxact.replay`, whose docstring is the decision table);
3. ``expired-savepoints`` — delete savepoint refs kept past ``gitxact.savepointKeep``.

Other features add their step with one line in :data:`STEPS` (reaping dead leases,
repairing state files): a step is ``f(ws) -> StepReport``. A step that fails reports a
problem and the next step still runs; recover exits 1 if any problem remains.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, Field

from gitxact import gitlocks, replay
from gitxact.documents import Document
from gitxact.errors import GitxactError
from gitxact.lockqueue import EXCLUSIVE
from gitxact.state import StateModel

if TYPE_CHECKING:
    from gitxact.workspace import Workspace

RECOVER_FILE = "recover.json"
RECOVER_LOCK = "recover"


class StepReport(BaseModel):
    """What one recover step did (``actions``) and what it could not fix (``problems``)."""

    name: str
    actions: list[str] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class RecoverDoc(Document):
    ok: bool
    at: float
    steps: list[StepReport]


class LastRecover(BaseModel):
    at: float
    pid: int
    agent: str | None = None
    ok: bool
    actions: int
    problems: list[str] = Field(default_factory=list)


class RecoverState(StateModel):
    KIND: ClassVar[str] = "recover"
    SCHEMA: ClassVar[int] = 1

    last: LastRecover | None = None


RecoverStep = Callable[["Workspace"], StepReport]


#: The steps, in order. One line per feature; keep ``git-locks`` first.
def state_files_step(ws: Workspace) -> StepReport:
    """Restore damaged state files from their backups (or start them afresh), clear dead lock records."""
    from gitxact import doctor

    findings = doctor.check_state_files(ws, True) + doctor.check_lock_records(ws, True)
    report = StepReport(name="state-files")
    for finding in findings:
        if finding.fixed and not finding.lost_data:
            report.actions.append(f"{finding.problem}: {finding.repair}")
        else:
            # A file restarted empty is repaired, but what it held is gone: say so (exit 1) once.
            done = " (done)" if finding.fixed else ""
            report.problems.append(f"{finding.problem}: {finding.repair}{done}")
    return report


def leases_step(ws: Workspace) -> StepReport:
    """End leases whose owner died or whose TTL passed, finish half-done acquires/releases."""
    doc = ws.worktrees.reap()
    report = StepReport(name="leases")
    for item in doc.ended:
        what = f"{item.action} {item.agent or item.path} ({item.reason})"
        if item.stale_lock_removed:
            what += f"; {item.stale_lock_removed}"
        if item.snapshot_ref:
            what += f"; uncommitted work saved to {item.snapshot_ref}"
        if item.transaction:
            what += f"; {item.transaction}"
        if item.error:
            report.problems.append(f"{what}: {item.error}")
        else:
            report.actions.append(what)
    report.actions += [f"locked {agent}'s worktree again" for agent in doc.relocked]
    return report


STEPS: list[tuple[str, RecoverStep]] = [
    ("git-locks", gitlocks.recover_step),
    ("state-files", state_files_step),
    ("journals", replay.recover_step),
    ("leases", leases_step),
    ("expired-savepoints", replay.expire_step),
]


def run_recover(ws: Workspace, steps: list[tuple[str, RecoverStep]] | None = None) -> RecoverDoc:
    """Run every step under the exclusive repository lock and remember the outcome for ``status``."""
    reports: list[StepReport] = []
    with ws.lock(EXCLUSIVE):
        for name, step in STEPS if steps is None else steps:
            try:
                report = step(ws)
            except GitxactError as exc:
                report = StepReport(name=name, problems=[exc.message])
            report.name = name
            reports.append(report)
        doc = RecoverDoc(ok=all(r.ok for r in reports), at=time.time(), steps=reports)
        with ws.locks.resource(RECOVER_LOCK):
            ws.state_file(RECOVER_FILE, RecoverState).save(
                RecoverState(
                    last=LastRecover(
                        at=doc.at,
                        pid=os.getpid(),
                        agent=ws.agent,
                        ok=doc.ok,
                        actions=sum(len(r.actions) for r in reports),
                        problems=[p for r in reports for p in r.problems],
                    )
                )
            )
    return doc


def last_recover(ws: Workspace) -> LastRecover | None:
    """The last recover's summary (read without a lock)."""
    path = ws.state_dir / "state" / RECOVER_FILE
    if not path.exists() and not path.with_name(RECOVER_FILE + ".bak").exists():
        return None
    return ws.state_file(RECOVER_FILE, RecoverState).load().last
