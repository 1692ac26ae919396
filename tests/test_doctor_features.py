"""doctor and recover across features: dead leases, interrupted transactions, orphan refs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from support.health import doctor
from support.proc import GITXACT, ROOT, git, gitxact


def checks(report: dict) -> list[str]:
    return sorted(f["check"] for f in report["findings"])


def test_orphan_savepoint_refs(repo: Path) -> None:
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    tree = git("rev-parse", "HEAD^{tree}", cwd=repo).strip()
    lonely = git("commit-tree", tree, "-p", head, "-m", "only here", cwd=repo).strip()
    git("update-ref", "refs/gitxact/savepoints/worktree@main/tx-gone/start", head, cwd=repo)
    git("update-ref", "refs/gitxact/savepoints/worktree@main/tx-gone/later", lonely, cwd=repo)
    code, report = doctor(repo)
    assert code == 1
    assert checks(report) == ["refs", "refs"]
    code, report = doctor(repo, "--fix")
    assert code == 0
    refs = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/gitxact/", cwd=repo).split("\n")
    assert f"refs/gitxact/snapshots/orphaned/worktree@main/tx-gone/later {lonely}" in refs, "work is never dropped"
    assert not [r for r in refs if "savepoints" in r]
    assert doctor(repo)[1]["findings"] == []


def test_interrupted_transaction_found_and_fixed(repo: Path) -> None:
    assert gitxact("tx", "begin", cwd=repo).returncode == 0
    (repo / "new.txt").write_text("x\n")
    proc = subprocess.run(
        [*GITXACT, "tx", "rollback"],
        cwd=repo,
        capture_output=True,
        check=False,
        env={**os.environ, "GITXACT_TEST_CRASH_AFTER_STEP": "1"},
    )
    assert proc.returncode == -signal.SIGKILL
    code, report = doctor(repo)
    assert code == 1
    assert "transactions" in checks(report)
    code, report = doctor(repo, "--fix")
    assert code == 0, report
    assert not (repo / "new.txt").exists(), "the interrupted rollback was finished"
    assert doctor(repo)[1]["findings"] == []
    assert gitxact("tx", "begin", cwd=repo).returncode == 0


def test_recover_reaps_a_dead_agents_lease(repo: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; sys.path.insert(0, sys.argv[1]); from gitxact import Workspace; "
            "ws = Workspace(sys.argv[2]); doc = ws.worktrees.acquire('doomed'); "
            "open(doc.path + '/wip.txt', 'w').write('unsaved'); print(doc.path, flush=True); time.sleep(60)",
            str(ROOT),
            str(repo),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    path = Path(owner.stdout.readline().strip())
    assert (path / "wip.txt").exists()
    assert gitxact("recover", cwd=repo).returncode == 0
    assert path.exists(), "recover never touches a live lease"
    owner.send_signal(signal.SIGKILL)
    owner.wait()
    owner.stdout.close()
    code, report = doctor(repo)
    assert code == 1
    assert "worktrees" in checks(report)
    proc = gitxact("recover", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"]}
    assert any("doomed" in action for action in steps["leases"]["actions"])
    assert not path.exists()
    snapshots = git("for-each-ref", "--format=%(refname)", "refs/gitxact/snapshots/doomed/", cwd=repo).split()
    assert len(snapshots) == 1
    assert git("show", f"{snapshots[0]}:wip.txt", cwd=repo) == "unsaved", "uncommitted work was saved first"
    assert doctor(repo)[1]["findings"] == []
    git("fsck", cwd=repo)
