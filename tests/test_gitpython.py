"""The optional GitPython extra: ``lease.repo()`` hands an orchestrator a GitPython Repo of its worktree."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support.proc import ROOT, git

from gitxact import Workspace


def test_lease_repo_is_a_gitpython_repo_of_the_leased_worktree(repo: Path) -> None:
    ws = Workspace(repo)
    with ws.worktrees.lease("agent-1", keep_branch=True) as wt:
        gp = wt.repo()
        assert Path(gp.working_tree_dir) == wt.path
        assert gp.active_branch.name == wt.branch
        (wt.path / "feature.txt").write_text("from GitPython\n")
        gp.index.add(["feature.txt"])
        commit = gp.index.commit("add feature through GitPython")
    # The commit is on the agent's branch, which the release kept; the worktree is gone.
    assert git("rev-parse", "gitxact/agent-1", cwd=repo).strip() == commit.hexsha
    assert git("show", "gitxact/agent-1:feature.txt", cwd=repo) == "from GitPython\n"
    assert not wt.path.exists()
    git("fsck", "--strict", cwd=repo)


def test_without_gitpython_lease_repo_is_a_clear_usage_error(repo: Path) -> None:
    # A process where `import git` fails, as on an install without the extra.
    code = (
        "import sys; sys.modules['git'] = None\n"
        "from gitxact import Workspace\n"
        "from gitxact.errors import UsageError\n"
        f"ws = Workspace({str(repo)!r})\n"
        "with ws.worktrees.lease('agent-2') as wt:\n"
        "    try:\n"
        "        wt.repo()\n"
        "    except UsageError as exc:\n"
        "        print(exc.exit_code, exc.message, exc.hint)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("2 lease.repo() needs GitPython"), proc.stdout
    assert "gitxact[gitpython]" in proc.stdout


_GITPYTHON_WRITER = """
import sys
from pathlib import Path
import git
repo = git.Repo(sys.argv[1])
me = sys.argv[2]
for i in range(int(sys.argv[3])):
    name = f"{me}-{i}.txt"
    (Path(sys.argv[1]) / name).write_text(f"{me} {i}\\n")
    repo.git.add(name)
    repo.git.commit("-m", f"{me} {i}", "--", name)
"""


def test_gitpython_clients_through_gx_lose_nothing(repo: Path) -> None:
    """GIT_PYTHON_GIT_EXECUTABLE=gx: GitPython's git commands take gitxact's locks (issue 15).

    4 processes x 5 add+commit in one worktree: every commit lands, 0 failures. (What
    GitPython does in Python, e.g. ``repo.index.add``, writes the index without git: only
    its git commands go through gx; docs/leases.md says so.)
    """
    gx = Path(sys.executable).parent / "gx"
    env = {**os.environ, "GIT_PYTHON_GIT_EXECUTABLE": str(gx), "GIT_PYTHON_REFRESH": "quiet"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _GITPYTHON_WRITER, str(repo), f"w{n}", "5"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    results = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], [err[-500:] for _, err in results]
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "21"  # the fixture's first commit + 20
    assert sorted(p.name for p in repo.glob("w*-*.txt")) == sorted(f"w{n}-{i}.txt" for n in range(4) for i in range(5))
    git("fsck", "--strict", cwd=repo)
