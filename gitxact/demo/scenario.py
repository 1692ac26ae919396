"""What the demo's agents do, and the document that reports how it went.

The plan is the same with gitxact and with raw git (``--raw``), so the two summaries
compare like with like. The repository commits a ``.gitxact.toml`` (:data:`PROJECT_CONFIG`)
that the demo trusts with ``gitxact trust``, as a user would. Every agent:

1. gets a worktree and branch of its own (a lease; with raw git, ``git worktree add``),
   provisioned by the file: its setup command writes :data:`LEASE_FILE` from the lease's
   variables and a port is allocated to it; the agent reads its name and port back from
   that file and listens on the port while it works, as a dev server would (raw git has
   no setup and no ports: agents script their own);
2. runs a TDD sequence in it: commit a failing test (red), then the code that makes it
   pass (green). The ``flaky`` agent's first green is wrong: gitxact rolls the whole
   sequence back and the agent does it again;
3. commits notes into the one shared main worktree, all agents at once (``gx commit``;
   with raw git, ``git commit``: this is where ``index.lock`` bites);
4. bumps a shared counter many times, all agents at once (the tracker; with raw git, a
   JSON file read, changed and written back, as agents do today);
5. lands its TDD branch onto ``main`` through the landing queue (``gitxact land``, checked
   with every agent's test). The ``flaky`` agent's last-minute refactor breaks its test:
   the queue refuses it and the others land (raw git has no queue: branches stay unlanded);
6. releases its worktree. The ``crash`` agent instead opens a transaction with work in
   flight and is SIGKILLed there (before landing); ``gitxact recover`` cleans up after it.

Meanwhile the demo tries ``gc`` while the agents work: gitxact refuses it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gitxact.core.documents import Document

Mode = Literal["gitxact", "raw"]
Role = Literal["steady", "flaky", "crash"]

#: What the setup command writes in each new lease (ignored by git: it is the lease's own).
LEASE_FILE = ".lease.env"
#: The committed ``.gitxact.toml``: one setup command and one port per lease.
PROJECT_CONFIG = f"""[lease]
# Run in each new lease, with its variables: a file its agent reads (a dev server's settings).
setup = ['printf "agent=%s port=%s\\n" "$GITXACT_AGENT" "$GITXACT_PORT" > {LEASE_FILE}']
ports = 1
"""

#: Barriers the agents meet at, so the contended phases really overlap (agents started
#: by one orchestrator run at once; the demo makes that the worst case on purpose).
BARRIERS = ("commits", "tracker", "landing")


def roles(agents: int) -> list[Role]:
    """The last agent crashes, the one before it has a failing green; the rest are steady."""
    plan: list[Role] = ["steady"] * agents
    plan[-1] = "crash"
    if agents >= 2:
        plan[-2] = "flaky"
    return plan


def agent_name(index: int) -> str:
    return f"agent-{index + 1}"


class AgentRow(BaseModel):
    """One agent as the supervisor saw it (from its events, then from git)."""

    name: str
    role: Role
    phase: str = "starting"
    commits_planned: int = 0
    commits_acked: int = 0
    commits_landed: int = 0
    git_failures: int = 0
    bumps: int = 0
    rollbacks: int = 0
    killed: bool = False
    land: str = "-"  # landed, refused or failed through the landing queue
    port: int | None = None  # the lease's port, as its setup's file gave it and the agent listened on
    setup: bool = False  # the setup's file named this agent and its lease's port
    exit_code: int | None = None


class DemoSummary(Document):
    """``gitxact demo --json``: what landed, what was refused, what was lost (with ``"schema": 1``)."""

    mode: Mode
    agents: int
    commits_per_agent: int
    bumps_per_agent: int
    seconds: float
    commits_planned: int
    commits_landed: int = Field(
        description="of commits_planned, those found by their message on a branch (any branch: landing"
        " through the queue is `landed`)"
    )
    git_failures: int = Field(description="git or gx commands that failed (other than the planned failing check)")
    tracker_expected: int
    tracker_kept: int
    tdd_rollbacks: int
    gc_attempts: int
    gc_refused: int
    killed: int
    landed: int = Field(default=0, description="agents whose branch landed on main through the queue")
    land_refused: int = Field(default=0, description="agents whose branch the queue refused (its check failed)")
    agents_failed: list[str] = Field(description="agents (not the killed one) that stopped without finishing")
    trusted: bool = Field(default=False, description="`gitxact trust` trusted the committed .gitxact.toml")
    setup_ran: int = Field(default=0, description="agents whose lease's setup wrote their name and port")
    ports: list[int] = Field(default_factory=list, description="each agent's port, as it listened on it")
    recovered: bool
    recover_actions: list[str]
    snapshots: list[str]
    leases_left: int
    worktrees_left: int
    fsck_clean: bool
    lost: int
    repository: str | None
    rows: list[AgentRow]

    @property
    def ports_distinct(self) -> bool:
        """Every agent got a port, and no two the same."""
        return len(self.ports) == self.agents == len(set(self.ports))

    @property
    def ok(self) -> bool:
        """gitxact's promise: nothing lost, gc refused, the crash cleaned up, git consistent,
        every lease provisioned (setup run, a port of its own)."""
        return (
            self.lost == 0
            and self.trusted
            and self.setup_ran == self.agents
            and self.ports_distinct
            and self.git_failures == 0
            and not self.agents_failed
            and self.tdd_rollbacks == roles(self.agents).count("flaky")
            and self.gc_attempts >= 1
            and self.gc_refused == self.gc_attempts
            and self.killed == roles(self.agents).count("crash")
            and self.landed == roles(self.agents).count("steady")
            and self.land_refused == roles(self.agents).count("flaky")
            and self.recovered
            and len(self.snapshots) >= 1
            and self.leases_left == 0
            and self.worktrees_left == 0
            and self.fsck_clean
        )
