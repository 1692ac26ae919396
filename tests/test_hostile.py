"""Hostile input, generated: never a traceback or an internal error, the right exit code,
and nothing written outside gitxact's own folder.

These run the CLI in-process (``gitxact.cli.main.main``) for speed: it is the same
entry point and the same single error handler the console script uses.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.hostile import SETTINGS, json_values, run_cli, tree_snapshot
from support.proc import git

from gitxact.cli.main import main


@SETTINGS
@given(key=st.text(max_size=140), value=json_values)
def test_tracker_set_any_key_any_value(
    inside: Path, capsys: pytest.CaptureFixture[str], key: str, value: object
) -> None:
    before = tree_snapshot(inside.parent)
    code, out, _ = run_cli(capsys, "tracker", "set", key, json.dumps(value), "--json")
    assert code in (0, 2)
    if code == 0:
        assert json.loads(out)["value"] == value
        get_code, got, _ = run_cli(capsys, "tracker", "get", key, "--json")
        assert get_code == 0
        assert json.loads(got)["value"] == value
    assert tree_snapshot(inside.parent) == before


@SETTINGS
@given(raw=st.text(max_size=60))
def test_tracker_set_any_text_as_value(inside: Path, capsys: pytest.CaptureFixture[str], raw: str) -> None:
    code, _, err = run_cli(capsys, "tracker", "set", "k", raw)
    assert code in (0, 2)
    if code == 2:
        assert err.strip()


@SETTINGS
@given(amount=st.text(alphabet=string.printable, max_size=8), key=st.text(max_size=20))
def test_tracker_incr_any_input(inside: Path, capsys: pytest.CaptureFixture[str], amount: str, key: str) -> None:
    code, _, _ = run_cli(capsys, "tracker", "incr", key, amount)
    assert code in (0, 1, 2)


@SETTINGS
@given(agent=st.text(max_size=80))
def test_any_agent_name_in_the_environment(
    inside: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, agent: str
) -> None:
    if "\x00" in agent:
        return  # an environment variable cannot hold NUL
    monkeypatch.setenv("GITXACT_AGENT", agent)
    code, _, _ = run_cli(capsys, "tracker", "incr", "n")
    assert code in (0, 2)


@SETTINGS
@given(path=st.text(max_size=40), timeout=st.text(max_size=8))
def test_any_path_and_timeout(inside: Path, capsys: pytest.CaptureFixture[str], path: str, timeout: str) -> None:
    if "\x00" in path:
        return
    code, _, _ = run_cli(capsys, "-C", path, "lock", "--timeout", timeout, "--", "true")
    assert code in (0, 2)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    blob=st.binary(max_size=400),
    name=st.sampled_from(["tracker.json", "meta.json", "leases.json"]),
    backup_too=st.booleans(),
)
def test_random_bytes_in_state_files(
    inside: Path, capsys: pytest.CaptureFixture[str], blob: bytes, name: str, backup_too: bool
) -> None:
    state = inside / ".git" / "gitxact" / "state"
    try:
        for _ in range(2):
            assert main(["tracker", "incr", "n"]) == 0
        capsys.readouterr()
        (state / name).write_bytes(blob)
        if backup_too:
            (state / f"{name}.bak").write_bytes(blob[::-1])
        for args in (["status", "--json"], ["tracker", "get"], ["tracker", "incr", "n"], ["doctor"]):
            code, _, _ = run_cli(capsys, *args)
            assert code in (0, 1)
        code, _, err = run_cli(capsys, "doctor", "--fix")
        assert code == 0, err
        code, _, err = run_cli(capsys, "doctor")
        assert code == 0, err
    finally:
        # Leave the next example a working repository.
        for leftover in state.iterdir():
            leftover.unlink()
    git("status", cwd=inside)
