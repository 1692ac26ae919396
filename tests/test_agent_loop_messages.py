"""The small things of an agent's everyday loop (issue 24, part 5), through real processes.

* What runs inside a leased worktree is counted for its agent, even when the process
  names none (a shell-run agent rarely exports ``GITXACT_AGENT``): ``land``, ``tdd``,
  ``gx commit``.
* ``status`` shows the branch checked out, not git's worktree id as if it were one.
* A land refused for a conflict names the paths and the commands that fix it; a
  refused check names its log once; a progress line is never printed twice in a row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.leases import acquire
from support.proc import GX, git, gitxact, run

from gitxact.cli.land_cmd import _Progress
from gitxact.land.queue import QueueView


def _stats_for(repo: Path) -> dict[str, dict[str, int]]:
    proc = gitxact("stats", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    agents: dict[str, dict[str, int]] = json.loads(proc.stdout)["agents"]
    return agents


def test_work_in_a_leased_worktree_is_counted_for_its_agent(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt = acquire(repo, "shell-agent")
    (wt / "note.txt").write_text("hello\n")
    git("add", "note.txt", cwd=wt)
    committed = run([*GX, "commit", "-q", "-m", "note"], wt)
    assert committed.returncode == 0, committed.stderr
    (wt / "test_x.py").write_text("def test_x():\n    assert False\n")
    red = gitxact("tdd", "red", "--check", "false", "test_x.py", cwd=wt)
    assert red.returncode == 0, red.stderr
    assert gitxact("tdd", "abort", cwd=wt).returncode == 0
    landed = gitxact("land", "--onto", "main", cwd=wt)
    assert landed.returncode == 0, landed.stderr

    counts = _stats_for(repo)["shell-agent"]
    assert counts["commits"] == 1
    assert counts["transactions"] == 1
    assert counts["rollbacks"] == 1
    assert counts["lands"] == 1
    assert "-" not in _stats_for(repo) or _stats_for(repo)["-"].get("lands", 0) == 0


def test_a_named_agent_is_still_who_the_process_says(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt = acquire(repo, "leased")
    (wt / "n.txt").write_text("n\n")
    git("add", "n.txt", cwd=wt)
    proc = run([*GX, "commit", "-q", "-m", "n"], wt, env={"GITXACT_AGENT": "leased"})
    assert proc.returncode == 0, proc.stderr
    assert _stats_for(repo)["leased"]["commits"] == 1


def test_status_shows_the_branch_checked_out(tmp_path: Path) -> None:
    main = tmp_path / "r"
    main.mkdir()
    git("init", "-q", "-b", "master", cwd=main)
    git("commit", "-q", "--allow-empty", "-m", "init", cwd=main)
    assert gitxact("init", cwd=main).returncode == 0
    proc = gitxact("status", cwd=main)
    line = next(text for text in proc.stdout.splitlines() if text.startswith("worktree"))
    assert line.endswith(f"{main}  on master")
    assert json.loads(gitxact("status", "--json", cwd=main).stdout)["repository"]["branch"] == "master"

    wt = acquire(main, "a1", base="master")
    line = next(text for text in gitxact("status", cwd=wt).stdout.splitlines() if text.startswith("worktree"))
    assert line.endswith("on gitxact/a1  (worktree id a1)")
    git("checkout", "-q", "--detach", cwd=wt)
    doc = json.loads(gitxact("status", "--json", cwd=wt).stdout)["repository"]
    assert doc["branch"] is None
    assert doc["worktree_id"] == "a1"


def test_a_conflict_says_what_to_do_next(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt = acquire(repo, "a1")
    (repo / "shared.txt").write_text("main's\n")
    git("add", "shared.txt", cwd=repo)
    git("commit", "-q", "-m", "main side", cwd=repo)
    (wt / "shared.txt").write_text("agent's\n")
    git("add", "shared.txt", cwd=wt)
    git("commit", "-q", "-m", "agent side", cwd=wt)

    proc = gitxact("land", "--onto", "main", cwd=wt)
    assert proc.returncode == 3, proc.stderr
    assert "it conflicts with main in: shared.txt" in proc.stderr
    assert "gx rebase main" in proc.stderr
    assert "gitxact land gitxact/a1 --onto main" in proc.stderr
    doc = json.loads(gitxact("land", "--onto", "main", "--json", cwd=wt).stdout)
    assert doc["conflicts"] == ["shared.txt"]


def test_a_failing_check_names_its_log_once(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt = acquire(repo, "a1")
    (wt / "f.txt").write_text("f\n")
    git("add", "f.txt", cwd=wt)
    git("commit", "-q", "-m", "f", cwd=wt)
    proc = gitxact("land", "--onto", "main", "--check", "false", cwd=wt)
    assert proc.returncode == 3, proc.stderr
    log = json.loads(gitxact("land", "--onto", "main", "--check", "false", "--json", cwd=wt).stdout)["check_log"]
    assert log
    first_log = proc.stderr.split("its log: ", 1)[1].split(")", 1)[0]
    assert proc.stderr.count(first_log) == 1


def test_a_log_gets_a_line_per_place_in_the_queue_once(capsys: pytest.CaptureFixture[str]) -> None:
    progress = _Progress("main")  # capsys's stderr is no terminal: the log's lines
    progress(QueueView(position=2, waiting=2, serving=("a1",), step="check"))
    progress(QueueView(position=2, waiting=3, serving=("a1",), step="check"))  # one more waits: same line
    progress(QueueView(position=2, waiting=3, serving=("a1",), step="move"))  # a step: not for a log
    progress(QueueView(position=1, waiting=2, serving=("a2",), step="build"))
    progress(QueueView(position=0, waiting=1, serving=("a3",), step="check"))  # its own landing: the outcome says
    assert capsys.readouterr().err.splitlines() == [
        "gitxact: 2nd in the queue for main; landing now: a1",
        "gitxact: 1st in the queue for main; landing now: a2",
    ]
