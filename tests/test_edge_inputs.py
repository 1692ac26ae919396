"""What comes from outside (issue 25 part 3): a NUL byte, JSON nested too deep, an argument too large.

Through real processes, the CLI and Claude Code's hook command refuse each with exit 2 and
the reason, before anything is done, never "internal error" or a RecursionError traceback
(the MCP server's side is in tests/test_mcp.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from support.proc import assert_clean_error, git, gitxact

from gitxact.util import inputs

DEEP = "[" * 10_000 + "]" * 10_000


def test_the_tracker_refuses_deep_or_nul_values_and_keeps_what_it_had(repo: Path) -> None:
    assert gitxact("tracker", "set", "k", '"kept"', cwd=repo).returncode == 0
    cases = [
        (DEEP, "value is nested deeper than 64 levels"),
        ('{"a": ' * 65 + "1" + "}" * 65, "value is nested deeper than 64 levels"),
        ('"a\\u0000b"', "value holds a NUL byte"),
        ('{"k\\u0000": 1}', "value holds a NUL byte in a key"),
    ]
    for value, expected in cases:
        proc = gitxact("tracker", "set", "k", value, cwd=repo)
        assert_clean_error(proc, 2)
        assert f"gitxact: error [invalid_argument]: {expected}" in proc.stderr
        assert "internal error" not in proc.stderr
    assert json.loads(gitxact("tracker", "get", "k", "--json", cwd=repo).stdout)["value"] == "kept"
    as_deep_as_allowed = "[" * inputs.MAX_DEPTH + "]" * inputs.MAX_DEPTH
    assert gitxact("tracker", "set", "k", as_deep_as_allowed, cwd=repo).returncode == 0
    brackets = "[" * 20 + "1" + "]" * 20
    many = '["' + "[" * 200 + '", ' + brackets + "]"  # brackets in a string do not nest
    assert gitxact("tracker", "set", "k", many, cwd=repo).returncode == 0


def test_claude_codes_hook_command_refuses_deep_or_nul_input_and_leases_nothing(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    payloads = [
        ('{"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "a", "x": ' + DEEP + "}", "nested deeper"),
        ('{"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "a", "source_ref": "main\\u0000x"}', "NUL"),
        ('{"hook_event_name": "WorktreeCreate", "cwd": ".", "name": "a\\u0000b"}', "NUL"),
    ]
    for payload, expected in payloads:
        proc = gitxact("hook-claude", "create", cwd=repo, input=payload)
        assert_clean_error(proc, 2)
        assert "WorktreeCreate hook input" in proc.stderr
        assert expected in proc.stderr
        assert "internal error" not in proc.stderr
        assert proc.stdout == "", "no path for Claude Code to use"
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"] == []
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1, "no worktree was made"
    remove = '{"hook_event_name": "WorktreeRemove", "cwd": ".", "worktree_path": "/x\\u0000y"}'
    assert_clean_error(gitxact("hook-claude", "remove", cwd=repo, input=remove), 2)


def test_a_state_file_forged_too_deep_is_damage_not_a_crash(repo: Path) -> None:
    """A file nested past the parser's recursion limit reads as corrupt: its backup serves, doctor repairs."""
    for value in ('"first"', '"second"'):  # two generations: the second write keeps the first as the backup
        assert gitxact("tracker", "set", "k", value, cwd=repo).returncode == 0
    state = repo / ".git" / "gitxact" / "state" / "tracker.json"
    state.write_text(DEEP)
    got = gitxact("tracker", "get", "k", "--json", cwd=repo)
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["value"] == "first", "the backup's generation"
    assert "nested too deep" in got.stderr
    assert "internal error" not in got.stderr
    fixed = gitxact("doctor", "--fix", cwd=repo)
    assert fixed.returncode == 0, fixed.stderr
    assert "Traceback" not in fixed.stderr + fixed.stdout
    assert gitxact("doctor", cwd=repo).returncode == 0
    assert DEEP not in state.read_text()


def test_a_value_too_large_for_one_argument_comes_through_stdin(repo: Path) -> None:
    """Linux holds at most 128 KiB in one argument: `tracker set KEY -` reads the value (up to 1 MiB) from stdin."""
    value = {"pad": "x" * (1024 * 1024 - 100)}
    proc = gitxact("tracker", "set", "big", "-", cwd=repo, input=json.dumps(value))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(gitxact("tracker", "get", "big", "--json", cwd=repo).stdout)["value"] == value
    too_big = gitxact("tracker", "set", "big", "-", cwd=repo, input=json.dumps("x" * (1024 * 1024 + 1)))
    assert_clean_error(too_big, 2)
    assert "larger than 1048576 bytes" in too_big.stderr
