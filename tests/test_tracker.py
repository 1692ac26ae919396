"""The tracker and the lock under real concurrent processes: exact counts.

The tracker's tests take ``backend_repo`` (tests/conftest.py): they run on the files of
this host and on the PostgreSQL test server alike, through the same CLI.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, gitxact, run_parallel

#: (processes, CLI calls each): the default run proves the count (32 calls racing); the soak run
#: under ``-m stress`` makes 400, which takes minutes on a loaded 2-core machine.
SIZES = [pytest.param(8, 4, marks=pytest.mark.slow), pytest.param(8, 50, marks=pytest.mark.stress)]


@pytest.mark.parametrize(("procs", "each"), SIZES)
def test_parallel_cli_increments_lose_nothing(repo: Path, procs: int, each: int) -> None:
    """Through the CLI, on files (a command on PostgreSQL pays ~120 ms importing psycopg;
    tests/test_postgres_tracker.py counts processes on both backends through the library)."""
    loop = (
        "import subprocess, sys\n"
        f"for _ in range({each}):\n"
        "    subprocess.run([sys.executable, '-m', 'gitxact', 'tracker', 'incr', 'count'], check=True,"
        " stdout=subprocess.DEVNULL)\n"
    )
    results = run_parallel([[sys.executable, "-c", loop] for _ in range(procs)], repo)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert gitxact("tracker", "get", "count", cwd=repo).stdout.strip() == str(procs * each)
    doc = json.loads(gitxact("tracker", "get", "count", "--json", cwd=repo).stdout)
    assert doc["version"] == procs * each


@pytest.mark.parametrize(("procs", "each"), SIZES)
def test_plain_file_read_modify_write_under_gitxact_lock(repo: Path, tmp_path: Path, procs: int, each: int) -> None:
    counter = tmp_path / "counter.json"
    counter.write_text(json.dumps({"n": 0}))
    rmw = (
        f"import json, pathlib, time; p = pathlib.Path({str(counter)!r}); d = json.loads(p.read_text()); "
        "time.sleep(0.001); d['n'] += 1; p.write_text(json.dumps(d))"
    )
    loop = (
        "import subprocess, sys\n"
        f"for _ in range({each}):\n"
        "    subprocess.run([sys.executable, '-m', 'gitxact', 'lock', '--', sys.executable, '-c',"
        f" {rmw!r}], check=True)\n"
    )
    results = run_parallel([[sys.executable, "-c", loop] for _ in range(procs)], repo)
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    assert json.loads(counter.read_text())["n"] == procs * each


def test_set_with_expected_version(backend_repo: Path) -> None:
    repo = backend_repo
    assert gitxact("tracker", "incr", "done", cwd=repo).stdout == "1\n"
    proc = gitxact("tracker", "set", "owner", '"alice"', "--expect-version", "0", "--json", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc == {**doc, "schema": 1, "key": "owner", "value": "alice", "version": 1}
    # Someone else changed it since version 0: refused, value kept.
    proc = gitxact("tracker", "set", "owner", '"bob"', "--expect-version", "0", cwd=repo)
    assert_clean_error(proc, 3)
    assert "version 1" in proc.stderr
    assert gitxact("tracker", "get", "owner", cwd=repo).stdout.strip() == '"alice"'
    assert gitxact("tracker", "set", "owner", '"bob"', "--expect-version", "1", cwd=repo).returncode == 0
    assert gitxact("tracker", "set", "plan", '{"steps": [1, 2], "done": false}', cwd=repo).returncode == 0
    everything = json.loads(gitxact("tracker", "get", "--json", cwd=repo).stdout)
    assert everything["entries"]["plan"]["value"] == {"steps": [1, 2], "done": False}
    assert sorted(everything["entries"]) == ["done", "owner", "plan"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["set", "k", "not json"], 2),
        (["set", "k", "NaN"], 2),
        (["set", "../etc/passwd", "1"], 2),
        (["set", "-rf", "1"], 2),
        (["set", "", "1"], 2),
        (["incr", "a b"], 2),
        (["incr", "k", "x"], 2),
        (["get", "missing"], 1),
    ],
)
def test_bad_input_is_a_clear_error(repo: Path, args: list[str], code: int) -> None:
    assert_clean_error(gitxact("tracker", *args, cwd=repo), code)


def test_incr_of_a_non_integer_fails(backend_repo: Path) -> None:
    repo = backend_repo
    assert gitxact("tracker", "set", "k", '"text"', cwd=repo).returncode == 0
    proc = gitxact("tracker", "incr", "k", cwd=repo)
    assert_clean_error(proc, 1)
    assert "not an integer" in proc.stderr


def test_gitxact_module_entry_point(repo: Path) -> None:
    proc = subprocess.run([*GITXACT, "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert proc.stdout.startswith("gitxact, version ")


def test_a_write_that_would_make_the_file_unreadable_is_refused_before_it_is_acknowledged(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reader and writer share one size limit: every acknowledged key survives the next read."""
    from gitxact import Workspace
    from gitxact.errors import OperationFailedError
    from gitxact.util import files

    monkeypatch.setattr(files, "MAX_STATE_BYTES", 3 * 1024 * 1024)  # the real one is 32 MiB; same code path
    ws = Workspace(repo)
    big = "x" * (1024 * 1024 - 64)
    acknowledged = []
    for i in range(2):  # 2 x 1 MiB fits under 3 MiB
        ws.tracker.set(f"k{i}", big)
        acknowledged.append(f"k{i}")
    with pytest.raises(OperationFailedError, match="over the 3145728 byte limit; nothing was written"):
        ws.tracker.set("k2", big)
    state = ws.state_dir / "state"
    again = Workspace(repo).tracker.get()
    assert sorted(again) == acknowledged, "nothing acknowledged was lost"
    assert not list(state.glob("tracker.json.corrupt-*")), "the file was never damaged"
    assert (state / "tracker.json").stat().st_size <= files.MAX_STATE_BYTES
    proc = gitxact("tracker", "set", "small", "1", cwd=repo)
    assert proc.returncode == 0, "the tracker keeps working"
