"""Foresight (issue 28): conflicts between agents seen before anyone lands, and ``land --dry-run``.

Three agents on real git: two edit the same lines of one file, the third another file;
``gitxact conflicts`` names the overlapping pair and the paths, and changes nothing
(every ref, the landing queue and every worktree's status as they were); ``land
--dry-run`` answers as ``land`` would (exit 0 / 3) and files nothing.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from support.leases import acquire
from support.proc import GITXACT, GX, git, gitxact, run


def _commit(wt: Path, name: str, text: str) -> None:
    (wt / name).write_text(text)
    git("add", name, cwd=wt)
    git("commit", "-q", "-m", f"edit {name}", cwd=wt)


def _everything(repo: Path, worktrees: list[Path]) -> tuple[str, list[str], list[str]]:
    """Refs, each worktree's status, and the state folder's files: what must not change."""
    state = sorted(str(p.relative_to(repo / ".git" / "gitxact")) for p in (repo / ".git" / "gitxact").rglob("*.json"))
    statuses = [git("status", "--porcelain=v1", cwd=wt) for wt in worktrees]
    return git("for-each-ref", cwd=repo), statuses, state


def _three_agents(repo: Path) -> list[Path]:
    (repo / "shared.py").write_text("def f():\n    return 1\n")
    git("add", "shared.py", cwd=repo)
    git("commit", "-q", "-m", "shared", cwd=repo)
    assert gitxact("init", cwd=repo).returncode == 0
    a1, a2, a3 = (acquire(repo, f"a{i}") for i in (1, 2, 3))
    _commit(a1, "shared.py", "def f():\n    return 2\n")
    _commit(a2, "shared.py", "def f():\n    return 3\n")
    _commit(a3, "other.py", "x = 1\n")
    return [a1, a2, a3]


def test_conflicts_names_the_overlapping_pair_and_changes_nothing(repo: Path) -> None:
    worktrees = _three_agents(repo)
    before = _everything(repo, [repo, *worktrees])

    proc = gitxact("conflicts", "--onto", "main", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == 1
    assert doc["target"] == "main"
    assert [(c["agent"], c["clean"], c["paths"]) for c in doc["against_target"]] == [
        ("a1", True, []),
        ("a2", True, []),
        ("a3", True, []),
    ]
    assert [(p["agents"], p["paths"]) for p in doc["pairs"]] == [(["a1", "a2"], ["shared.py"])]
    assert doc["pairs_checked"] == 3
    assert doc["clean"] is False
    assert gitxact("conflicts", "--exit-code", "--json", cwd=repo).returncode == 1
    assert _everything(repo, [repo, *worktrees]) == before

    text = gitxact("conflicts", cwd=repo).stdout  # the main worktree's branch is the default target
    assert "a1 x a2  conflict in shared.py" in text
    assert "3 pair(s) checked" in text


def test_a_branch_behind_a_conflicting_target_is_seen(repo: Path) -> None:
    a1, _, _ = _three_agents(repo)
    landed = gitxact("land", "--onto", "main", cwd=a1)
    assert landed.returncode == 0, landed.stderr
    doc = json.loads(gitxact("conflicts", "--onto", "main", "--json", cwd=repo).stdout)
    verdicts = {c["agent"]: (c["paths"], c["integrated"]) for c in doc["against_target"]}
    assert verdicts["a2"] == (["shared.py"], None)
    assert verdicts["a3"] == ([], None)
    assert verdicts["a1"] == ([], "merged into main"), "a landed branch (fast-forwarded) has nothing left"
    assert doc["pairs"] == [], "a1 x a2 is gone with a1's landing: a2 against main says it"
    assert gitxact("conflicts", "--exit-code", cwd=repo).returncode == 1
    assert "a1  gitxact/a1  merged into main" in gitxact("conflicts", cwd=repo).stdout


def test_land_dry_run_answers_as_land_would_and_files_nothing(repo: Path) -> None:
    a1, a2, a3 = _three_agents(repo)
    assert gitxact("land", "--onto", "main", cwd=a1).returncode == 0
    before = _everything(repo, [repo, a1, a2, a3])

    refused = gitxact("land", "--onto", "main", "--dry-run", "--json", cwd=a2)
    assert refused.returncode == 3, refused.stderr
    doc = json.loads(refused.stdout)
    assert (doc["would_land"], doc["conflicts"], doc["ahead"]) == (False, ["shared.py"], 0)

    fine = gitxact("land", "--onto", "main", "--dry-run", cwd=a3)
    assert fine.returncode == 0, fine.stderr
    assert "gitxact/a3 would land" in fine.stdout

    already = json.loads(gitxact("land", "gitxact/a1", "--onto", "main", "--dry-run", "--json", cwd=repo).stdout)
    assert (already["would_land"], already["already"]) == (True, True)
    assert _everything(repo, [repo, a1, a2, a3]) == before

    assert gitxact("land", "--onto", "main", cwd=a2).returncode == 3  # and land itself agrees


def test_an_agent_that_follows_the_refusal_lands(repo: Path) -> None:
    """A scripted agent: land, refused; run the document's next steps, resolving in between; land."""
    a1, a2, a3 = _three_agents(repo)
    _commit(a3, "shared.py", "def f():\n    return 4\n")  # a3 touches the same lines too
    assert gitxact("land", "--onto", "main", cwd=a1).returncode == 0
    main_tip = git("rev-parse", "main", cwd=repo).strip()

    refused = gitxact("land", "--onto", "main", "--json", cwd=a2)
    assert refused.returncode == 3, refused.stderr
    doc = json.loads(refused.stdout)
    assert doc["conflicts"] == ["shared.py"]
    assert doc["conflict_commits"] == [main_tip]
    assert doc["conflict_leases"] == ["a3"]
    update, cont, again = doc["next_steps"]
    assert (update, cont, again) == ("gx rebase main", "gx rebase --continue", "gitxact land gitxact/a2 --onto main")

    stopped = run([*GX, *update.split()[1:]], a2)
    assert stopped.returncode != 0  # the rebase stops at the conflict, as the refusal said it would
    (a2 / "shared.py").write_text("def f():\n    return 2 + 1\n")
    assert run([*GX, "add", "shared.py"], a2).returncode == 0
    continued = run([*GX, *cont.split()[1:]], a2, env={"GIT_EDITOR": "true"})
    assert continued.returncode == 0, continued.stderr
    landed = gitxact(*again.split()[1:], cwd=a2)
    assert landed.returncode == 0, landed.stderr
    assert git("show", "main:shared.py", cwd=repo) == "def f():\n    return 2 + 1\n"
    git("fsck", "--strict", "--no-dangling", cwd=repo)  # raises on any error (dangling objects are none)


def test_stats_counts_the_queue_by_why(repo: Path) -> None:
    a1, a2, a3 = _three_agents(repo)
    assert gitxact("land", "--onto", "main", "--check", "true", cwd=a1).returncode == 0
    assert gitxact("land", "--onto", "main", cwd=a2).returncode == 3  # conflicts with a1's landing
    assert gitxact("land", "--onto", "main", "--check", "false", cwd=a3).returncode == 3

    queue = json.loads(gitxact("stats", "--json", cwd=repo).stdout)["queue"]
    assert (queue["landed"], queue["not_landed"]) == (1, 2)
    assert queue["refusals"] == {"check": 1, "conflict": 1}
    assert queue["checks_per_landed"] == 1.0
    metrics = gitxact("stats", "--openmetrics", cwd=repo).stdout
    assert 'gitxact_land_refusals{why="conflict"} 1' in metrics
    assert "gitxact_land_queue_wait_seconds_count 3" in metrics
    assert "landing queue  1 landed, 2 not (check 1, conflict 1)" in gitxact("stats", cwd=repo).stdout


def test_the_listings_show_what_each_lease_would_conflict_with(repo: Path) -> None:
    a1, a2, a3 = _three_agents(repo)
    before = _everything(repo, [repo, a1, a2, a3])
    doc = json.loads(gitxact("worktree", "list", "--conflicts", "--json", cwd=repo).stdout)
    assert {info["agent"]: info["conflicts"] for info in doc["leases"]} == {
        "a1": {"a2": ["shared.py"]},
        "a2": {"a1": ["shared.py"]},
        "a3": {},
    }
    plain = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)
    assert all(info["conflicts"] is None for info in plain["leases"])  # only when asked: no merge-tree by default
    table = gitxact("worktree", "list", "--conflicts", "--onto", "main", cwd=repo).stdout
    assert "CONFLICTS" in table
    assert "a2: shared.py" in table
    status = json.loads(gitxact("status", "--conflicts", "--json", cwd=repo).stdout)
    assert {info["agent"]: info["conflicts"] for info in status["leases"]}["a3"] == {}
    frame = gitxact("watch", "--once", "--conflicts", cwd=repo, env={"COLUMNS": "220"})
    assert frame.returncode == 0, frame.stderr
    assert "a1: shared.py" in frame.stdout
    assert gitxact("worktree", "list", "--onto", "main", cwd=repo).returncode == 2  # --onto goes with --conflicts
    assert _everything(repo, [repo, a1, a2, a3]) == before


def test_land_status_says_what_a_waiting_request_would_conflict_on(repo: Path) -> None:
    a1, a2, _ = _three_agents(repo)
    assert gitxact("land", "--onto", "main", cwd=a1).returncode == 0
    from gitxact import Workspace

    ws = Workspace(repo)
    with ws.locks.resource("land.main"):  # the queue's lock: the request files, then waits
        waiting = subprocess.Popen(
            [*GITXACT, "land", "--onto", "main", "--json"], cwd=a2, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            doc: dict[str, Any] = {}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                doc = json.loads(gitxact("land", "--status", "--json", cwd=repo).stdout)
                if doc["queues"] and doc["queues"][0]["waiting"]:
                    break
                time.sleep(0.1)
            (item,) = doc["queues"][0]["waiting"]
            assert (item["branch"], item["conflicts"]) == ("gitxact/a2", ["shared.py"])
            assert "conflicts with main in: shared.py" in gitxact("land", "--status", cwd=repo).stdout
        except BaseException:
            waiting.kill()
            waiting.communicate(timeout=60)
            raise
    _, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 3, err  # and land itself refuses it, for that conflict
