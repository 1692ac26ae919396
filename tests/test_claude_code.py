"""Claude Code's worktrees as gitxact leases: `gitxact integrate claude-code` and the hooks it sets.

The hooks get what Claude Code sends (the common fields plus `name` for a creation, as
the program sends it, or `worktree_name`, as its documentation says; `worktree_path`
for a removal) from a stand-in Claude Code process that runs them through `sh -c`,
as Claude Code runs command hooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.proc import assert_clean_error, git, gitxact, owner_process

from gitxact import Workspace
from gitxact.integrations.claude_settings import integrate

BIN = Path(sys.executable).parent
#: A stand-in for Claude Code: runs the hook command through a shell (which does not exec
#: it away: `; exit $?`), feeds it the payload, reports its own pid and what the hook did.
CLAUDE = """
import json, subprocess, sys, os
command, payload = sys.argv[1], sys.stdin.read()
proc = subprocess.run(["sh", "-c", command + "; exit $?"], input=payload, capture_output=True, text=True)
print(json.dumps({"pid": os.getpid(), "rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))
"""


def claude(repo: Path, verb: str, payload: dict[str, Any] | str, **env: str) -> dict[str, Any]:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    proc = subprocess.run(
        [sys.executable, "-c", CLAUDE, f"gitxact hook-claude {verb}"],
        cwd=repo,
        input=text,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def created(repo: Path, name: str, key: str = "name") -> dict[str, Any]:
    return {
        "session_id": "5f0c1e0e-6d7e-4b0a-9b1c-2a6f3c1d9e8f",
        "transcript_path": str(repo / "transcript.jsonl"),
        "cwd": str(repo),
        "hook_event_name": "WorktreeCreate",
        key: name,
    }


def removed(repo: Path, path: str) -> dict[str, Any]:
    return {
        "session_id": "5f0c1e0e-6d7e-4b0a-9b1c-2a6f3c1d9e8f",
        "transcript_path": str(repo / "transcript.jsonl"),
        "cwd": path,  # the session ran inside the worktree it now removes
        "hook_event_name": "WorktreeRemove",
        "worktree_path": path,
    }


# -- settings ---------------------------------------------------------------------------------------


def test_integrate_writes_both_hooks_once_and_keeps_the_users_settings(repo: Path) -> None:
    settings = repo / ".claude" / "settings.json"
    settings.parent.mkdir()
    users = {
        "permissions": {"allow": ["Bash(npm test)"]},
        "hooks": {
            "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "./check.sh"}]}],
            "WorktreeCreate": [{"hooks": [{"type": "command", "command": "/old/venv/bin/gitxact hook-claude create"}]}],
        },
    }
    settings.write_text(json.dumps(users, indent=4))
    proc = gitxact("integrate", "claude-code", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["action"] == "updated", "the old gitxact entry is replaced, not doubled"
    data = json.loads(settings.read_text())
    assert data["permissions"] == users["permissions"]
    assert data["hooks"]["PreToolUse"] == users["hooks"]["PreToolUse"]  # type: ignore[index]
    assert list(data["hooks"]) == ["PreToolUse", "WorktreeCreate", "WorktreeRemove"]
    for event, verb in (("WorktreeCreate", "create"), ("WorktreeRemove", "remove")):
        assert data["hooks"][event] == [{"hooks": [{"type": "command", "command": f"gitxact hook-claude {verb}"}]}]
    text = settings.read_text()
    assert json.loads(gitxact("integrate", "claude-code", "--json", cwd=repo).stdout)["action"] == "unchanged"
    assert settings.read_text() == text

    removed_doc = integrate(settings, remove=True)
    assert removed_doc.action == "removed"
    assert json.loads(settings.read_text()) == {
        "permissions": users["permissions"],
        "hooks": {
            "PreToolUse": users["hooks"]["PreToolUse"]  # type: ignore[index]
        },
    }
    assert integrate(settings, remove=True).action == "absent"


def test_integrate_refuses_a_foreign_worktree_hook_and_bad_json(repo: Path) -> None:
    settings = repo / ".claude" / "settings.local.json"
    settings.parent.mkdir()
    foreign = {"hooks": {"WorktreeCreate": [{"hooks": [{"type": "command", "command": "./make-worktree.sh"}]}]}}
    settings.write_text(json.dumps(foreign))
    proc = gitxact("integrate", "claude-code", "--local", cwd=repo)
    assert_clean_error(proc, 3)
    assert "./make-worktree.sh" in proc.stderr
    assert json.loads(settings.read_text()) == foreign, "nothing written"
    settings.write_text("{ not json")
    assert_clean_error(gitxact("integrate", "claude-code", "--local", cwd=repo), 2)
    assert settings.read_text() == "{ not json"
    settings.unlink()
    proc = gitxact("integrate", "claude-code", "--local", "--gitxact", "/opt/my tools/gitxact", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    command = json.loads(settings.read_text())["hooks"]["WorktreeCreate"][0]["hooks"][0]["command"]
    assert command == "'/opt/my tools/gitxact' hook-claude create"


# -- the hooks ---------------------------------------------------------------------------------------


def test_create_leases_a_worktree_owned_by_claude_code_and_remove_keeps_its_work(repo: Path) -> None:
    (repo / ".gitignore").write_text(".env\nbuild/\n")
    (repo / ".env").write_text("API_KEY=secret\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("big\n")
    (repo / ".worktreeinclude").write_text(".env\nREADME\n")  # README is tracked: it comes with the checkout
    git("add", ".gitignore", ".worktreeinclude", cwd=repo)
    git("commit", "-q", "-m", "ignore rules", cwd=repo)

    result = claude(repo, "create", created(repo, "feat/auth"))
    assert result["rc"] == 0, result["stderr"]
    path = result["stdout"].strip()
    assert result["stdout"] == path + "\n", "only the path on stdout"
    assert path == os.path.realpath(repo.parent / "repo.worktrees" / "feat-auth")
    [lease] = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"]
    assert (lease["agent"], lease["branch"]) == ("feat-auth", "gitxact/feat-auth")
    assert lease["owner"]["pid"] == result["pid"], "owned by Claude Code, not by the hook or its shell"
    assert (Path(path) / ".env").read_text() == "API_KEY=secret\n"
    assert not (Path(path) / "build").exists(), "only what .worktreeinclude names"
    assert "copied 1 file(s)" in result["stderr"]

    (Path(path) / "draft.txt").write_text("unfinished\n")
    result = claude(repo, "remove", removed(repo, path))
    assert result["rc"] == 0, result["stderr"]
    assert result["stdout"] == ""
    assert not os.path.exists(path)
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"] == []
    [snap] = Workspace(repo).snapshots.list(agent="feat-auth").snapshots
    assert git("show", f"{snap.ref}:draft.txt", cwd=repo) == "unfinished\n"
    assert snap.ref in result["stderr"]

    again = claude(repo, "remove", removed(repo, path))
    assert again["rc"] == 0, "removing twice is not an error"
    assert "nothing was removed" in again["stderr"]


def test_one_name_is_one_session(repo: Path) -> None:
    with owner_process() as other:
        first = claude(repo, "create", created(repo, "shared", key="worktree_name"), GITXACT_OWNER_PID=str(other.pid))
        assert first["rc"] == 0, first["stderr"]
        stolen = claude(repo, "create", created(repo, "shared"))
        assert stolen["rc"] == 3
        assert "leased to another live process" in stolen["stderr"]
        assert stolen["stdout"] == ""
        resumed = claude(repo, "create", created(repo, "shared"), GITXACT_OWNER_PID=str(other.pid))
        assert (resumed["rc"], resumed["stdout"]) == (0, first["stdout"]), "the same owner resumes its worktree"
        path = first["stdout"].strip()
        refused = claude(repo, "remove", removed(repo, path))
        assert refused["rc"] == 3
        assert os.path.isdir(path)
    # Once its owner is gone, anyone may end it (as reap would).
    assert claude(repo, "remove", removed(repo, path))["rc"] == 0
    assert not os.path.exists(path)


@pytest.mark.parametrize(
    ("verb", "payload", "message"),
    [
        ("create", "not json", "not JSON"),
        ("create", "[1, 2]", "not a JSON object"),
        ("create", {"hook_event_name": "WorktreeRemove", "worktree_path": "/x"}, "this is the WorktreeCreate hook"),
        ("remove", {"hook_event_name": "WorktreeRemove", "cwd": "."}, "no worktree_path"),
        ("create", {"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "x", "source_ref": "no-such"}, "no-such"),
    ],
)
def test_bad_hook_input_is_exit_2_and_prints_no_path(
    repo: Path, verb: str, payload: dict[str, Any] | str, message: str
) -> None:
    proc = gitxact("hook-claude", verb, cwd=repo, input=payload if isinstance(payload, str) else json.dumps(payload))
    assert_clean_error(proc, 2)
    assert message in proc.stderr
    assert proc.stdout == ""
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"] == []
