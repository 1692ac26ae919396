"""The README's examples run as written (against a real repository and a stand-in agent)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support.proc import ROOT, git, gitxact

README = (ROOT / "README.md").read_text()


def _block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


def test_orchestrator_example_runs(repo: Path, tmp_path: Path) -> None:
    code = _block_after("## An orchestrator in 15 lines")
    assert len(code.strip().splitlines()) <= 16
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    agent = bin_dir / "my-agent"
    # A stand-in agent: writes its task to a file and commits it through gx.
    agent.write_text(
        "#!/bin/sh\nset -e\n"
        'printf "%s\\n" "$1" > task.txt\n'
        f'"{Path(sys.executable).parent}/gx" add task.txt\n'
        f'"{Path(sys.executable).parent}/gx" commit -q -m "$GITXACT_AGENT: $1"\n'
    )
    agent.chmod(0o755)
    script = tmp_path / "orchestrate.py"
    script.write_text(code.replace("/path/to/repo", str(repo)))
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 0]"
    # Both agents' commits are kept on their branches (unmerged, so release kept them).
    for name, task in (("agent-1", "fix parser"), ("agent-2", "write docs")):
        assert git("log", "-1", "--format=%s", f"gitxact/{name}", cwd=repo).strip() == f"{name}: {task}"
    assert json.loads(gitxact("tracker", "get", "tasks.done", "--json", cwd=repo).stdout)["value"] == 2
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"] == []
    git("fsck", "--strict", cwd=repo)
