"""``gitxact land --parallel N``: the speculative queue, through real git and real processes.

- four branches, ``--parallel 3``, the second failing its check: the three checks of the
  first round run at once (a barrier in the check proves it, no clock), the first lands,
  the second is refused, the third is built again on the target without it and checked
  again with the fourth; every landed first-parent commit passes the check when checked out;
- ``--batch 2 --parallel 2``: a failing batch is bisected, the others land in order;
- a SIGKILL at each new step (crash points and every journal step), then ``recover``:
  nothing landed twice or lost, the target only ever at a commit whose check passed;
- checks run at once share no pipe, leave nothing running and die with their lander;
- a target moved outside the queue mid-round: every candidate rebuilt, nothing overwritten;
- a request put back in the queue is seen through though its requester was killed;
- ``gitxact.landParallel`` is the default (a bad value: exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from support.crashes import STRIDES
from support.proc import GITXACT, git, gitxact, kill_group

from fixtures.repos import make_repo
from gitxact import Workspace
from gitxact.land.records import FINAL, LandingFile

pytestmark = pytest.mark.slow

#: Logs the commit it runs on; waits (bounded) until BARRIER checks have started, so the
#: log shows whether they ran at once; fails on bad.txt or a branch file with the wrong text.
CHECK = """set -e
echo "start $(git rev-parse HEAD)" >> %(log)s
i=0
while [ "$(grep -c start %(log)s)" -lt %(barrier)d ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
echo "end $(git rev-parse HEAD)" >> %(log)s
test ! -f bad.txt
for f in b*.txt; do test "$(cat "$f")" = "${f%%.txt}"; done
"""


def write_check(tmp_path: Path, barrier: int) -> tuple[Path, Path]:
    log = tmp_path / "checked"
    script = tmp_path / "check.sh"
    script.write_text(CHECK % {"log": log, "barrier": barrier})
    return script, log


def make_branches(repo: Path, names: list[str], bad: set[str]) -> None:
    """One commit per branch off main, each on its own file; those in *bad* break the check."""
    for name in names:
        where = repo.parent / f"wt-{name}"
        git("worktree", "add", "-q", "-b", name, str(where), "main", cwd=repo)
        (where / f"{name}.txt").write_text(name)
        if name in bad:
            (where / "bad.txt").write_text("breaks the check")
        git("add", ".", cwd=where)
        git("commit", "-q", "-m", f"{name} work", cwd=where)
        git("worktree", "remove", str(where), cwd=repo)


def land_queued(
    repo: Path, names: list[str], extra: list[str], env: dict[str, str] | None = None
) -> dict[str, subprocess.CompletedProcess[str]]:
    """Land *names*, filed in that order while the queue is held, then served; each one's result."""
    lf = LandingFile(Workspace(repo))
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        with Workspace(repo).locks.resource("land.main"):
            for count, name in enumerate(names, 1):
                procs[name] = subprocess.Popen(
                    [*GITXACT, "land", name, "--onto", "main", "--json", "--timeout", "300", *extra],
                    cwd=repo,
                    env={**os.environ, **(env or {})},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                deadline = time.monotonic() + 120
                while len([r for r in lf.peek().requests if r.state == "pending"]) < count:
                    assert time.monotonic() < deadline, f"{name}'s request was never filed"
                    time.sleep(0.05)
        results = {}
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=300)
            results[name] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        return results
    finally:
        for proc in procs.values():
            if proc.returncode is None:
                kill_group(proc)  # type: ignore[arg-type]


def first_parent_since(repo: Path, since: str) -> list[str]:
    return git("rev-list", "--reverse", "--first-parent", f"{since}..main", cwd=repo).split()


def subject(repo: Path, commit: str) -> str:
    return git("log", "-1", "--format=%s", commit, cwd=repo).strip()


def recheck(repo: Path, tmp_path: Path, script: Path, commit: str) -> None:
    """The check, run again on *commit* checked out on its own: it passes."""
    again = tmp_path / f"again-{commit[:10]}"
    git("worktree", "add", "-q", "--detach", str(again), commit, cwd=repo)
    rerun = subprocess.run(["sh", str(script)], cwd=again, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, (commit, rerun.stderr)
    git("worktree", "remove", "--force", str(again), cwd=repo)


def assert_nothing_left(repo: Path) -> None:
    assert len(git("worktree", "list", "--porcelain", cwd=repo).split("worktree ")) == 2, "only the main worktree"
    land_dir = repo / ".git" / "gitxact" / "land"
    assert not land_dir.exists() or not list(land_dir.iterdir()), "every candidate worktree removed"
    state = LandingFile(Workspace(repo)).peek()
    assert state.work == []
    assert all(r.state in FINAL for r in state.requests)
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_parallel_three_with_a_failing_middle_branch(repo: Path, tmp_path: Path) -> None:
    names = ["b1", "b2", "b3", "b4"]
    make_branches(repo, names, bad={"b2"})
    script, log = write_check(tmp_path, barrier=3)
    before = git("rev-parse", "main", cwd=repo).strip()
    results = land_queued(repo, names, ["--parallel", "3", "--check", f"sh {script}"])
    codes = {name: r.returncode for name, r in results.items()}
    assert codes == {"b1": 0, "b2": 3, "b3": 0, "b4": 0}, {n: r.stderr[-1500:] for n, r in results.items()}
    docs = {name: json.loads(r.stdout) for name, r in results.items()}
    assert "the check" in docs["b2"]["reason"]
    assert docs["b2"]["check_log"]
    lines = log.read_text().split("\n")
    assert [line.split()[0] for line in lines[:3]] == ["start"] * 3, "the first round's three checks ran at once"
    started = [line.split()[1] for line in lines if line.startswith("start")]
    assert len(started) == 5, "3 at once; then b3 again (without b2) and b4, not b1 again"
    landed = first_parent_since(repo, before)
    assert [subject(repo, c) for c in landed] == ["b1 work", "b3 work", "b4 work"], "in queue order, b2 not"
    assert [docs[n]["landed_tip"] for n in ("b1", "b3", "b4")] == landed, "each landed as its own candidate"
    assert (docs["b1"]["attempts"], docs["b3"]["attempts"], docs["b4"]["attempts"]) == (1, 2, 1)
    for name in ("b1", "b3", "b4"):  # which commit landed as which, as on the serial path (b1: fast-forward)
        original = git("rev-parse", name, cwd=repo).strip()
        assert docs[name]["landed_as"] == {original: docs[name]["landed_tip"]}, docs[name]["landed_as"]
    assert set(landed) <= set(started), "the target only ever at a commit whose check ran"
    for commit in landed:
        recheck(repo, tmp_path, script, commit)
    assert not (repo / "bad.txt").exists()
    assert git("status", "--porcelain", cwd=repo) == "", "the main worktree followed main"
    assert_nothing_left(repo)


def test_batches_run_in_parallel_and_a_failing_batch_is_bisected(repo: Path, tmp_path: Path) -> None:
    names = ["b1", "b2", "b3", "b4", "b5", "b6"]
    make_branches(repo, names, bad={"b3"})
    script, log = write_check(tmp_path, barrier=2)
    before = git("rev-parse", "main", cwd=repo).strip()
    results = land_queued(repo, names, ["--batch", "2", "--parallel", "2", "--check", f"sh {script}"])
    codes = {name: r.returncode for name, r in results.items()}
    assert codes == {"b1": 0, "b2": 0, "b3": 3, "b4": 0, "b5": 0, "b6": 0}, {
        n: r.stderr[-1500:] for n, r in results.items()
    }
    docs = {name: json.loads(r.stdout) for name, r in results.items()}
    lines = log.read_text().split("\n")
    assert [line.split()[0] for line in lines[:2]] == ["start"] * 2, "the two batches were checked at once"
    started = [line.split()[1] for line in lines if line.startswith("start")]
    assert len(started) == 5, "[b1 b2] and [b3 b4] at once; b3 alone, b4 alone; then [b5 b6]"
    landed = first_parent_since(repo, before)
    assert [subject(repo, c) for c in landed] == ["b1 work", "b2 work", "b4 work", "b5 work", "b6 work"]
    assert docs["b1"]["batch"] == [docs["b1"]["request"], docs["b2"]["request"]], "checked together"
    assert docs["b1"]["landed_tip"] == docs["b2"]["landed_tip"] == landed[1]
    for name in ("b2", "b4", "b6"):
        assert docs[name]["landed_tip"] in started, f"{name}'s landed tip is a commit that was checked"
        recheck(repo, tmp_path, script, docs[name]["landed_tip"])
    assert_nothing_left(repo)


# -- SIGKILLs ---------------------------------------------------------------------------------


def _crash_and_recover(tmp_path: Path, name: str, env: dict[str, str]) -> bool:
    """Land b1, b2 (failing), b3 with --parallel 3 under a crash switch, recover, and check it
    all adds up; then land whatever is left. True if some process was killed."""
    repo = make_repo(tmp_path / name / "repo")
    names = ["b1", "b2", "b3"]
    make_branches(repo, names, bad={"b2"})
    script, _log = write_check(tmp_path / name, barrier=0)
    before = git("rev-parse", "main", cwd=repo).strip()
    extra = ["--parallel", "3", "--check", f"sh {script}"]
    results = land_queued(repo, names, extra, env=env)
    codes = [r.returncode for r in results.values()]
    assert set(codes) <= {0, 1, 3, -9}, {n: r.stderr[-1500:] for n, r in results.items()}
    recover = gitxact("recover", "--json", cwd=repo)
    assert recover.returncode == 0, (name, recover.stdout, recover.stderr)
    landed = first_parent_since(repo, before)
    subjects = [subject(repo, c) for c in landed]
    assert len(subjects) == len(set(subjects)), f"{name}: nothing landed twice"
    assert "b2 work" not in subjects, f"{name}: the failing branch never landed"
    assert subjects == sorted(subjects), f"{name}: in queue order"
    for commit in landed:
        recheck(repo, tmp_path / name, script, commit)
    state = LandingFile(Workspace(repo)).peek()
    landed_branches = {r.branch for r in state.requests if r.state == "landed"}
    assert landed_branches == {s.split()[0] for s in subjects}, f"{name}: the records say what main says"
    assert git("status", "--porcelain", cwd=repo) == "", name
    assert_nothing_left(repo)
    rest = [
        n
        for n in names
        if n not in landed_branches and not any(r.branch == n and r.state == "refused" for r in state.requests)
    ]
    if rest:
        again = land_queued(repo, rest, extra)
        assert {n: r.returncode for n, r in again.items()} == {n: 3 if n == "b2" else 0 for n in rest}
    final = [subject(repo, c) for c in first_parent_since(repo, before)]
    assert final == ["b1 work", "b3 work"], f"{name}: nothing lost"
    assert_nothing_left(repo)
    shutil.rmtree(repo.parent)
    return -9 in codes


@pytest.mark.parametrize("point", ["land-candidates-built", "land-checks-done", "land-moved", "land-candidate-landed"])
def test_sigkill_at_a_speculative_crash_point_then_recover(tmp_path: Path, point: str) -> None:
    assert _crash_and_recover(tmp_path, point, {"GITXACT_TEST_CRASHPOINT": point}), f"nobody reached {point}"


@pytest.mark.parametrize("stride", STRIDES)
def test_sigkill_after_every_journal_step_of_a_speculative_round(tmp_path: Path, stride: int) -> None:
    killed = 0
    for step in range(1, 40, stride):
        if not _crash_and_recover(tmp_path, f"step-{step}", {"GITXACT_TEST_CRASH_AFTER_STEP": str(step)}):
            break
        killed += 1
    # The lander's steps: file, claim, three candidates recorded and built (two steps each),
    # the first's move and cleanup and outcome, b3's requeue, b2's drop and refusal: 14.
    assert killed >= 14 // stride, "every step of the round was a kill point"


# -- several checks at once: each its own group, nothing shared ---------------------------------


def test_checks_run_at_once_share_no_pipe_and_leave_nothing_running(tmp_path: Path) -> None:
    """A check that finished is told so while another still runs (had its output pipe leaked
    into the other's processes, its end of output would wait for them); what it left running
    in the background is ended; each verdict is its own."""
    import threading

    from gitxact.tx import checks

    logs = tmp_path / "logs"
    release = tmp_path / "release"
    background = tmp_path / "background.pid"
    waits = f"i=0; while [ ! -f {release} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; test -f {release}"
    jobs = [
        (checks.parse(f"sleep 300 & echo $! > {background}; echo first", timeout=120), tmp_path),
        (checks.parse(waits, timeout=120), tmp_path),
        (checks.parse("echo third; exit 4", timeout=120), tmp_path),
    ]
    found: list[list[checks.CheckResult]] = []
    runner = threading.Thread(target=lambda: found.append(checks.run_all(jobs, log_dir=logs, label="t")))
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while not all(any("# exit" in p.read_text() for p in logs.glob(f"check-*-t-{n}-*.log")) for n in (1, 3)):
            assert time.monotonic() < deadline, "the first and third checks were never done while the second ran"
            assert runner.is_alive()
            time.sleep(0.05)
    finally:
        release.touch()
        runner.join(timeout=120)
    assert not runner.is_alive()
    [results] = found
    assert [r.returncode for r in results] == [0, 0, 4]
    assert [r.passed for r in results] == [True, True, False]
    assert "first" in results[0].log.read_text()
    assert "third" in results[2].log.read_text()
    groups = {next(line for line in r.log.read_text().splitlines() if "process group" in line) for r in results}
    assert len(groups) == 3, "each check in a process group of its own"
    pid = int(background.read_text())
    deadline = time.monotonic() + 30
    try:
        while _alive(pid):
            assert time.monotonic() < deadline, "the first check's background sleep outlived it"
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def test_a_sigkilled_parallel_lander_takes_every_check_with_it(repo: Path, tmp_path: Path) -> None:
    names = ["b1", "b2", "b3"]
    make_branches(repo, names, bad=set())
    groups = tmp_path / "groups"
    groups.mkdir()
    before = git("rev-parse", "main", cwd=repo).strip()
    check = f"sleep 300 & echo $$ > {groups}/$$.tmp; mv {groups}/$$.tmp {groups}/$$.pgid; sleep 300"
    lf = LandingFile(Workspace(repo))
    procs = []
    try:
        with Workspace(repo).locks.resource("land.main"):
            for count, name in enumerate(names, 1):
                procs.append(
                    subprocess.Popen(
                        [*GITXACT, "land", name, "--onto", "main", "--parallel", "3", "--shell", "--check", check],
                        cwd=repo,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                deadline = time.monotonic() + 120
                while len([r for r in lf.peek().requests if r.state == "pending"]) < count:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        deadline = time.monotonic() + 120
        while len(list(groups.glob("*.pgid"))) < 3:
            assert time.monotonic() < deadline, "the three checks never all started"
            time.sleep(0.05)
    finally:
        for proc in procs:
            kill_group(proc)  # type: ignore[arg-type]
    pgids = [int(p.read_text()) for p in groups.glob("*.pgid")]
    assert len(set(pgids)) == 3
    deadline = time.monotonic() + 30
    try:
        while alive := [g for g in pgids if _group_alive(g)]:
            assert time.monotonic() < deadline, f"check groups outlived their lander: {alive}"
            time.sleep(0.05)
    finally:
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
    assert gitxact("recover", "--json", cwd=repo).returncode == 0
    assert git("rev-parse", "main", cwd=repo).strip() == before, "killed while checking: nothing moved"
    assert_nothing_left(repo)


def _alive(pid: int) -> bool:
    """*pid* runs (a zombie has ended; only its parent has not read its status)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _group_alive(pgid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == pgid and fields[0] != "Z":
                    return True
    return False


def test_a_target_moved_outside_the_queue_during_a_round_rebuilds_every_candidate(repo: Path, tmp_path: Path) -> None:
    """The first check to run pushes a commit onto the target behind the queue's back: the
    first move's compare-and-swap fails, so every candidate is rebuilt on the new tip and
    checked again; all land after the outside commit, none over it."""
    git("branch", "trunk", cwd=repo)  # a target no worktree has checked out
    names = ["b1", "b2", "b3"]
    for name in names:
        git("branch", name, "trunk", cwd=repo)
        where = tmp_path / f"wt-{name}"
        git("worktree", "add", "-q", str(where), name, cwd=repo)
        (where / f"{name}.txt").write_text(name)
        git("add", ".", cwd=where)
        git("commit", "-q", "-m", f"{name} work", cwd=where)
        git("worktree", "remove", str(where), cwd=repo)
    once = tmp_path / "moved-once"
    outside = (
        f"if mkdir {once} 2>/dev/null; then"
        " c=$(git commit-tree 'trunk^{tree}' -p trunk -m outside) && git update-ref refs/heads/trunk $c; fi"
    )
    before = git("rev-parse", "trunk", cwd=repo).strip()
    lf = LandingFile(Workspace(repo))
    procs: list[subprocess.Popen[str]] = []
    try:
        with Workspace(repo).locks.resource("land.trunk"):
            for count, name in enumerate(names, 1):
                argv = [*GITXACT, "land", name, "--onto", "trunk", "--parallel", "3", "--json", "--timeout", "300"]
                procs.append(
                    subprocess.Popen(
                        [*argv, "--shell", "--check", outside],
                        cwd=repo,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        start_new_session=True,
                    )
                )
                deadline = time.monotonic() + 120
                while len([r for r in lf.peek().requests if r.state == "pending"]) < count:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                kill_group(proc)  # type: ignore[arg-type]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _out, err in outputs]
    docs = [json.loads(out) for out, _err in outputs]
    history = git("rev-list", "--reverse", "--first-parent", f"{before}..trunk", cwd=repo).split()
    assert [subject(repo, c) for c in history] == ["outside", "b1 work", "b2 work", "b3 work"], "nothing overwritten"
    assert [d["landed_tip"] for d in docs] == history[1:]
    assert all(d["attempts"] == 2 for d in docs), "each built on the old tip, then again on the new one"
    assert_nothing_left(repo)


def test_a_request_put_back_is_seen_through_though_its_requester_died(repo: Path, tmp_path: Path) -> None:
    """Taken up by a round and put back when an earlier candidate failed: the lander that took
    it up lands it, although its requester was SIGKILLed meanwhile (as a batch's would be)."""
    names = ["b1", "b2", "b3", "b4"]
    make_branches(repo, names, bad={"b2"})
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    check = (
        f"echo x >> {started}; i=0; while [ ! -f {gate} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done;"
        " test ! -f bad.txt"
    )
    ws = Workspace(repo)
    lf = LandingFile(ws)
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        with ws.locks.resource("land.main"):
            for count, name in enumerate(names, 1):
                argv = [*GITXACT, "land", name, "--onto", "main", "--parallel", "4", "--json", "--timeout", "300"]
                procs[name] = subprocess.Popen(
                    [*argv, "--shell", "--check", check],
                    cwd=repo,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                deadline = time.monotonic() + 120
                while len([r for r in lf.peek().requests if r.state == "pending"]) < count:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
        deadline = time.monotonic() + 120
        while not started.exists() or len(started.read_text().split()) < 4:
            assert time.monotonic() < deadline, "the round's four checks never all started"
            time.sleep(0.05)
        lander = {w.owner.pid for w in lf.peek().work}
        assert len(lander) == 1
        victim = next(n for n in ("b3", "b4") if procs[n].pid not in lander)
        kill_group(procs[victim])  # type: ignore[arg-type]
        gate.touch()
        outputs = {n: p.communicate(timeout=300) for n, p in procs.items()}
    finally:
        gate.touch()
        for proc in procs.values():
            if proc.returncode is None:
                kill_group(proc)  # type: ignore[arg-type]
    codes = {n: p.returncode for n, p in procs.items()}
    assert codes == {"b1": 0, "b2": 3, "b3": 0, "b4": 0} | {victim: -9}, {
        n: e[-1500:] for n, (_o, e) in outputs.items()
    }
    state = {r.branch: r for r in lf.peek().requests}
    assert {n: state[n].state for n in names} == {"b1": "landed", "b2": "refused", "b3": "landed", "b4": "landed"}
    assert state[victim].outcome is not None
    assert state[victim].outcome.served_by in lander, "seen through by the lander that took it up"
    landed = [subject(repo, c) for c in first_parent_since(repo, git("rev-parse", "main~3", cwd=repo).strip())]
    assert landed == ["b1 work", "b3 work", "b4 work"]
    assert_nothing_left(repo)


def test_the_setting_gives_the_default_and_a_bad_value_is_a_usage_error(repo: Path, tmp_path: Path) -> None:
    names = ["b1", "b2"]
    make_branches(repo, names, bad=set())
    git("config", "gitxact.landParallel", "0", cwd=repo)
    bad = gitxact("land", "b1", "--onto", "main", cwd=repo)
    assert bad.returncode == 2, bad.stderr
    assert "gitxact.landParallel" in bad.stderr
    git("config", "gitxact.landParallel", "2", cwd=repo)
    script, log = write_check(tmp_path, barrier=2)
    before = git("rev-parse", "main", cwd=repo).strip()
    results = land_queued(repo, names, ["--check", f"sh {script}"])
    assert {n: r.returncode for n, r in results.items()} == {"b1": 0, "b2": 0}
    assert [line.split()[0] for line in log.read_text().split("\n")[:2]] == ["start"] * 2, "checked at once"
    assert [subject(repo, c) for c in first_parent_since(repo, before)] == ["b1 work", "b2 work"]
    assert_nothing_left(repo)
