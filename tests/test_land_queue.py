"""``gitxact land`` under contention and kills: real processes, exact counts, no timing.

- six agents in leased worktrees land at once onto local ``main``: all land, in the
  order they were filed, ``main`` linear, and the check re-run on every landed tip passes;
- three clones land onto one bare remote while another process pushes outside the queue:
  every commit arrives, nothing is overwritten, ``fsck`` is clean;
- a batch of four with one failing change is bisected: the culprit refused, the others land;
- a SIGKILL after every journal step (and at the crash points between them), then
  ``recover``: the target moved or not, nothing left behind, the request finished.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from support.backends import onto_postgres
from support.crashes import STRIDES
from support.proc import GITXACT, git, gitxact, run_parallel

from fixtures.repos import make_repo
from gitxact import Workspace
from gitxact.land.records import FINAL, LandingFile
from gitxact.land.store import open_landing

pytestmark = pytest.mark.slow

CHECK = """set -e
tree=$(git rev-parse 'HEAD^{tree}')
echo "$tree" >> %(log)s
for f in $(ls | grep '^agent-'); do test "$(cat "$f")" = "$f"; done
"""


def write_check(tmp_path: Path) -> tuple[Path, Path]:
    """A check that fails if any agent file is wrong, logging the tree it ran on."""
    log = tmp_path / "checked-trees"
    script = tmp_path / "check.sh"
    script.write_text(CHECK % {"log": log})
    return script, log


def first_parent_since(repo: Path, since: str, ref: str = "main") -> list[str]:
    return git("rev-list", "--reverse", "--first-parent", f"{since}..{ref}", cwd=repo).split()


def subject(repo: Path, commit: str) -> str:
    return git("log", "-1", "--format=%s", commit, cwd=repo).strip()


def seqs(repo: Path) -> dict[str, int]:
    return {r.id: r.seq for r in LandingFile(Workspace(repo)).peek().requests}


def test_six_agents_land_concurrently_in_request_order_and_every_tip_passed(repo: Path, tmp_path: Path) -> None:
    ws = Workspace(repo)
    agents = [f"agent-{i}" for i in range(1, 7)]
    for agent in agents:
        wt = Path(ws.worktrees.acquire(agent, owner_pid=os.getpid()).path)
        (wt / f"{agent}.txt").write_text(f"{agent}.txt")
        git("add", ".", cwd=wt)
        git("commit", "-q", "-m", f"{agent} work", cwd=wt)
    script, log = write_check(tmp_path)
    before = git("rev-parse", "main", cwd=repo).strip()
    commands = [
        [
            "env",
            f"GITXACT_AGENT={agent}",
            *GITXACT,
            "land",
            "--onto",
            "main",
            "--check",
            f"sh {script}",
            "--json",
            "--timeout",
            "300",
        ]
        for agent in agents
    ]
    results = run_parallel(commands, repo)
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    docs = [json.loads(r.stdout) for r in results]
    order = seqs(repo)
    by_request = sorted(docs, key=lambda d: order[d["request"]])
    landed = first_parent_since(repo, before)
    assert len(landed) == 6
    assert [subject(repo, c) for c in landed] == [f"{d['branch'].split('/')[-1]} work" for d in by_request]
    assert [d["landed_tip"] for d in by_request] == landed, "each request's tip is the next commit on main"
    assert git("rev-list", "--merges", f"{before}..main", cwd=repo) == "", "linear"
    trees = set(log.read_text().split())
    for tip in landed:
        assert git("rev-parse", f"{tip}^{{tree}}", cwd=repo).strip() in trees, "the check ran on exactly this tree"
        again = tmp_path / f"again-{tip[:8]}"
        git("worktree", "add", "-q", "--detach", str(again), tip, cwd=repo)
        rerun = subprocess.run(["sh", str(script)], cwd=again, capture_output=True, text=True, check=False)
        assert rerun.returncode == 0, rerun.stderr
        git("worktree", "remove", str(again), cwd=repo)
    for agent in agents:
        assert git("rev-list", "--count", f"main..gitxact/{agent}", cwd=repo).strip() in ("0", "1")
    assert git("status", "--porcelain", cwd=repo) == ""


def test_three_clones_land_onto_a_bare_remote_beside_an_outside_pusher(tmp_path: Path) -> None:
    seed = make_repo(tmp_path / "seed")
    bare = tmp_path / "remote.git"
    git("clone", "-q", "--bare", str(seed), str(bare), cwd=tmp_path)
    script, _log = write_check(tmp_path)
    commands: list[list[str]] = []
    branches: list[str] = []
    for c in range(1, 4):
        clone = tmp_path / f"clone-{c}"
        git("clone", "-q", str(bare), str(clone), cwd=tmp_path)
        for k in range(1, 3):
            name = f"agent-{c}-{k}"
            git("checkout", "-q", "-b", name, "origin/main", cwd=clone)
            (clone / f"{name}.txt").write_text(f"{name}.txt")
            git("add", ".", cwd=clone)
            git("commit", "-q", "-m", f"{name} work", cwd=clone)
            branches.append(name)
            commands.append(
                [
                    *GITXACT,
                    "-C",
                    str(clone),
                    "land",
                    name,
                    "--onto",
                    "main",
                    "--remote",
                    "origin",
                    "--check",
                    f"sh {script}",
                    "--retries",
                    "30",
                    "--timeout",
                    "300",
                    "--json",
                ]
            )
        git("checkout", "-q", "--detach", cwd=clone)
    outsider = tmp_path / "outsider"
    git("clone", "-q", str(bare), str(outsider), cwd=tmp_path)
    pusher = (
        "set -e; for i in 1 2 3 4 5; do echo $i > outside-$i; git add .; git commit -q -m outside-$i;"
        " until git push -q origin HEAD:main 2>/dev/null; do git pull -q --rebase origin main; done; done"
    )
    commands.append(["sh", "-c", f"cd {outsider} && {pusher}"])
    results = run_parallel(commands, tmp_path)
    assert [r.returncode for r in results] == [0] * 7, [r.stderr[-2000:] for r in results]
    subjects = git("log", "--format=%s", "main", cwd=bare).split("\n")
    for name in branches:
        assert f"{name} work" in subjects
    for i in range(1, 6):
        assert f"outside-{i}" in subjects, "nothing pushed outside the queue was overwritten"
    assert git("rev-list", "--merges", "main", cwd=bare) == ""
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=bare, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    for c in range(1, 4):
        assert git("for-each-ref", "refs/gitxact/land/", cwd=tmp_path / f"clone-{c}") == ""


def test_a_batch_is_bisected_to_its_culprit_and_the_others_land(repo: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    check = f"echo run >> {runs}; test ! -f bad.txt"
    names = ["b1", "b2", "b3", "b4"]
    for name in names:
        where = tmp_path / f"wt-{name}"
        git("worktree", "add", "-q", "-b", name, str(where), "main", cwd=repo)
        (where / f"{name}.txt").write_text(name)
        if name == "b3":
            (where / "bad.txt").write_text("breaks the check")
        git("add", ".", cwd=where)
        git("commit", "-q", "-m", f"{name} work", cwd=where)
        git("worktree", "remove", str(where), cwd=repo)
    before = git("rev-parse", "main", cwd=repo).strip()
    ws = Workspace(repo)
    lf = LandingFile(ws)
    with ws.locks.resource("land.main"):  # the queue is busy until all four have asked
        procs = [
            subprocess.Popen(
                [
                    *GITXACT,
                    "land",
                    name,
                    "--onto",
                    "main",
                    "--batch",
                    "4",
                    "--shell",
                    "--check",
                    check,
                    "--json",
                    "--timeout",
                    "300",
                ],
                cwd=repo,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for name in names
        ]
        deadline = time.monotonic() + 120
        while len([r for r in lf.peek().requests if r.state == "pending"]) < 4:
            assert time.monotonic() < deadline, "the four requests were never filed"
            assert all(p.poll() is None for p in procs)
            time.sleep(0.05)
    outputs = [p.communicate(timeout=300) for p in procs]
    codes = {name: p.returncode for name, p in zip(names, procs, strict=True)}
    assert codes == {"b1": 0, "b2": 0, "b3": 3, "b4": 0}, outputs
    assert len(runs.read_text().split()) == 5, "4 together, 2 + 2, then the failing pair alone: 1 + 2 + 2"
    landed = [subject(repo, c) for c in first_parent_since(repo, before)]
    order = sorted((r for r in lf.peek().requests if r.branch != "b3"), key=lambda r: r.seq)
    assert landed == [f"{r.branch} work" for r in order]
    assert not (repo / "bad.txt").exists()


def _land_killed(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return gitxact("land", "feature", "--onto", "main", "--check", "test -f feature.txt", "--json", cwd=repo, env=env)


def _assert_consistent(repo: Path, before: str, what: str) -> None:
    recover = gitxact("recover", "--json", cwd=repo)
    assert recover.returncode == 0, (what, recover.stdout, recover.stderr)
    main = git("rev-parse", "main", cwd=repo).strip()
    if main != before:
        assert git("rev-parse", "main~1", cwd=repo).strip() == before, what
        assert (repo / "feature.txt").exists(), f"{what}: main moved and its worktree followed"
    assert git("status", "--porcelain", cwd=repo) == "", what
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("worktree ")) == 2, what
    land_dir = repo / ".git" / "gitxact" / "land"
    assert not land_dir.exists() or not list(land_dir.iterdir()), what
    state = LandingFile(Workspace(repo)).peek()
    assert state.work == [], what
    assert all(r.state in FINAL for r in state.requests), what
    assert any(r.state == "landed" for r in state.requests) == (main != before), what
    again = gitxact("land", "feature", "--onto", "main", "--json", cwd=repo)
    assert again.returncode == 0, (what, again.stderr)
    assert (repo / "feature.txt").exists()
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, (what, fsck.stdout)


def _fresh(tmp_path: Path, name: str) -> tuple[Path, str]:
    repo = make_repo(tmp_path / name)
    git("branch", "feature", cwd=repo)
    where = tmp_path / f"{name}-wt"
    git("worktree", "add", "-q", str(where), "feature", cwd=repo)
    (where / "feature.txt").write_text("feature\n")
    git("add", ".", cwd=where)
    git("commit", "-q", "-m", "feature", cwd=where)
    git("worktree", "remove", str(where), cwd=repo)
    (repo / "later.txt").write_text("main moved on\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "main moved on", cwd=repo)
    return repo, git("rev-parse", "main", cwd=repo).strip()


@pytest.mark.parametrize("stride", STRIDES)
def test_sigkill_at_every_journal_step_then_recover(tmp_path: Path, stride: int) -> None:
    killed = 0
    for step in range(1, 20, stride):
        repo, before = _fresh(tmp_path, f"step-{step}")
        proc = _land_killed(repo, {"GITXACT_TEST_CRASH_AFTER_STEP": str(step)})
        if proc.returncode == 0:
            break
        assert proc.returncode in (-9, 137), (step, proc.returncode, proc.stderr)
        killed += 1
        _assert_consistent(repo, before, f"killed after step {step}")
        shutil.rmtree(repo)
    assert killed >= 6 // stride, "file, build, check, move, cleanup, done: every step was a kill point"


@pytest.mark.parametrize("point", ["land-worktree-added", "land-moved-before-sync"])
def test_sigkill_between_steps_then_recover(tmp_path: Path, point: str) -> None:
    repo, before = _fresh(tmp_path, "repo")
    proc = _land_killed(repo, {"GITXACT_TEST_CRASHPOINT": point})
    assert proc.returncode in (-9, 137), proc.stderr
    if point == "land-moved-before-sync":
        assert git("rev-parse", "main~1", cwd=repo).strip() == before, "killed after the move"
    _assert_consistent(repo, before, point)


@pytest.mark.parametrize("backend", ["files", "postgresql"])
def test_the_next_lander_finishes_a_dead_landers_step(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No recover needed for the queue to go on: whoever holds it next settles it (on
    PostgreSQL the dead lander's session, and the queue's lock, end with it)."""
    repo, before = _fresh(tmp_path, "repo")
    if backend == "postgresql":
        onto_postgres(repo, request.getfixturevalue("postgres_server"), monkeypatch, request.node.nodeid)
    proc = _land_killed(repo, {"GITXACT_TEST_CRASHPOINT": "land-worktree-added"})
    assert proc.returncode in (-9, 137)
    git("branch", "other", before, cwd=repo)
    again = gitxact("land", "feature", "--onto", "main", "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    lf = open_landing(Workspace(repo))
    states = sorted(r.state for r in lf.peek().requests)
    lf.close()
    assert states == ["failed", "landed"]
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("worktree ")) == 2


def test_a_waiter_shows_its_place_in_the_queue(repo: Path) -> None:
    git("commit", "-q", "--allow-empty", "-m", "feature", cwd=repo)
    git("branch", "feature", cwd=repo)
    git("reset", "-q", "--hard", "HEAD~1", cwd=repo)
    ws = Workspace(repo)
    with ws.locks.resource("land.main"):  # someone else is landing
        proc = subprocess.Popen(
            [*GITXACT, "land", "feature", "--onto", "main"],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed while it waits: the lock is still ours
        assert "1st in the queue for main" in line
        status = json.loads(gitxact("land", "--status", "--json", cwd=repo).stdout)
        assert [r["branch"] for r in status["queues"][0]["waiting"]] == ["feature"]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "landed feature onto main" in out
