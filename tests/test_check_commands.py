"""A ``--check`` string as the user typed it: run by sh when it has shell syntax, judged by
what its exit says, and never outliving the gitxact that ran it.

Issue 24 part 4: ``tdd red --check "sleep 0; false"`` ran ``sleep '0;' 'false'`` (a
usage error) and committed it as a failing test. Everything here runs real gitxact
processes on real repositories; the kills are SIGKILLs of the gitxact process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, wait_for_file
from support.tx import fingerprint, gitxact_refs

from gitxact import UsageError, Workspace
from gitxact.tx import checks
from gitxact.tx.tdd import NotAFailingTestError

PY = shlex.quote(sys.executable)
PYTEST = f"{PY} -m pytest -q -p no:cacheprovider --tb=no"  # no traceback: assert_clean_error looks for one
#: A test that fails as a test fails (an assertion); a test module that does not import.
FAILING_TEST = "def test_answer():\n    assert 41 == 42\n"
UNIMPORTABLE_TEST = "import no_such_module_xyz\n\ndef test_answer():\n    assert True\n"


@pytest.fixture
def red_repo(repo: Path) -> Path:
    """*repo* with a new test file to commit at red (an unrelated uncommitted change beside it)."""
    (repo / "test_new.py").write_text(FAILING_TEST)
    (repo / "wip.txt").write_text("uncommitted work\n")
    (repo / "empty").mkdir()
    return repo


def subjects(repo: Path) -> list[str]:
    return git("log", "--format=%s", cwd=repo).splitlines()


def red(repo: Path, check: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return gitxact("tdd", "red", *extra, "--check", check, "test_new.py", cwd=repo)


def assert_refused_untouched(repo: Path, proc: subprocess.CompletedProcess[str], code: int, before: object) -> None:
    assert_clean_error(proc, code)
    assert fingerprint(repo) == before, "nothing committed, nothing staged"
    assert gitxact_refs(repo) == []
    assert Workspace(repo).transactions.current() is None, "no sequence left open"


# -- what a check string runs -------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "sleep 0; false",
        "make lint && pytest",
        "pytest || true",
        "pytest | tee out.log",
        "pytest > out.log",
        "pytest $ARGS",
        "pytest `cat args`",
        "pytest tests/test_*.py",
        "cd sub && pytest",
        "FOO=1 pytest",
        "exit 1",
        "if true; then false; fi",
        "pytest # a comment",
        "echo one\necho two",
    ],
)
def test_shell_syntax_is_run_by_sh(command: str) -> None:
    spec = checks.parse(command)
    assert spec.argv == ["/bin/sh", "-c", command]
    assert spec.shell
    assert spec.display == command


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ('pytest -q -k "a or b"', ["pytest", "-q", "-k", "a or b"]),
        ("make test", ["make", "test"]),
        ("python -m pytest --maxfail=1 tests/x.py", ["python", "-m", "pytest", "--maxfail=1", "tests/x.py"]),
    ],
)
def test_plain_words_keep_their_argv(command: str, argv: list[str]) -> None:
    spec = checks.parse(command)
    assert (spec.argv, spec.shell) == (argv, False)
    forced = checks.parse(command, shell=True)
    assert forced.argv == ["/bin/sh", "-c", command]


def test_a_list_is_an_exact_argv_never_given_to_a_shell() -> None:
    spec = checks.parse(["echo", "a; b", "$HOME", "*"])
    assert (spec.argv, spec.shell) == (["echo", "a; b", "$HOME", "*"], False)
    with pytest.raises(UsageError):
        checks.parse(["echo", "x"], shell=True)
    with pytest.raises(UsageError):
        checks.parse([])


@pytest.mark.parametrize(
    ("command", "runner"),
    [
        ("pytest -q", "pytest"),
        ("py.test", "pytest"),
        (".venv/bin/python -m pytest -x", "pytest"),
        ("python3.11 -X dev -m pytest", "pytest"),
        ("sleep 0; PYTHONPATH=. pytest -q", "pytest"),
        ("uv run pytest", "pytest"),
        ("env FOO=1 pytest", "pytest"),
        ("python -c 'import pytest'", None),
        ("make test", None),
        ("sh -c 'exit 5'", None),
    ],
)
def test_a_check_that_runs_pytest_is_told_apart(command: str, runner: str | None) -> None:
    assert checks.parse(command).runner == runner


def test_red_exit_codes_are_parsed_and_checked() -> None:
    assert checks.parse_codes("1") == {1}
    assert checks.parse_codes("1, 3") == {1, 3}
    for bad in ["", "0", "1,0", "256", "x", "1;2", "-1"]:
        with pytest.raises(UsageError):
            checks.parse_codes(bad)


# -- red: the tests failed, not the command -----------------------------------------------


def test_a_shell_check_that_fails_is_red(red_repo: Path) -> None:
    repo = red_repo
    proc = red(repo, "echo checked-by-sh; sleep 0; false")
    assert proc.returncode == 0, proc.stderr
    assert subjects(repo)[0] == "TDD RED: test_new.py"
    assert "checked-by-sh" in proc.stderr, "sh ran `echo ...; sleep 0; false`, not `echo` with arguments"
    assert "checked-by-sh;" not in proc.stderr
    assert gitxact("tdd", "abort", cwd=repo).returncode == 0


def test_pytest_with_a_failing_test_is_red(red_repo: Path) -> None:
    repo = red_repo
    proc = red(repo, f"{PYTEST} test_new.py")
    assert proc.returncode == 0, proc.stderr
    assert "failed (exit 1), as red expects" in proc.stderr
    assert subjects(repo)[0] == "TDD RED: test_new.py"


@pytest.mark.parametrize(
    ("check", "why"),
    [
        (f"{PYTEST} empty", "pytest collected no tests"),
        (f"sleep 0; {PYTEST} --no-such-option test_new.py", "pytest was called wrongly"),
        (f"{PYTEST} test_unimportable.py", "a test module failed to import"),
        ("sh -c 'kill -KILL $$'", "killed by SIGKILL"),
        (f"{PY} -c 'import os, signal; os.kill(os.getpid(), signal.SIGTERM)'", "killed by SIGTERM"),
    ],
)
def test_a_check_that_ran_no_test_is_not_red(red_repo: Path, check: str, why: str) -> None:
    repo = red_repo
    (repo / "test_unimportable.py").write_text(UNIMPORTABLE_TEST)
    before = fingerprint(repo)
    proc = red(repo, check)
    assert_refused_untouched(repo, proc, 3, before)
    assert "which is not a failing test" in proc.stderr
    assert why in proc.stderr
    log = Path(proc.stderr.split("check output: ")[1].split(")")[0])
    assert log.is_file(), "the refusal names the check's log"
    assert "# exit" in log.read_text()


def test_a_collection_error_hints_how_to_make_it_red(red_repo: Path) -> None:
    repo = red_repo
    (repo / "test_unimportable.py").write_text(UNIMPORTABLE_TEST)
    proc = red(repo, f"{PYTEST} test_unimportable.py")
    assert_clean_error(proc, 3)
    assert "--red-exit 1,2" in proc.stderr
    proc = gitxact(
        "tdd", "red", "--red-exit", "1,2", "--check", f"{PYTEST} test_unimportable.py", "test_new.py", cwd=repo
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "check",
    ["sleep 0; no-such-program-xyz", "no-such-program-xyz --flag", "sleep 0; exit 127", "sleep 0; exit 126"],
)
def test_a_check_that_could_not_run_is_not_red(red_repo: Path, check: str) -> None:
    repo = red_repo
    before = fingerprint(repo)
    proc = red(repo, check)
    assert_refused_untouched(repo, proc, 2, before)


def test_bad_sh_syntax_is_refused_before_anything_runs(red_repo: Path, tmp_path: Path) -> None:
    repo = red_repo
    marker = tmp_path / "ran"
    before = fingerprint(repo)
    proc = red(repo, f"touch {marker}; echo 'unterminated")
    assert_refused_untouched(repo, proc, 2, before)
    assert "not valid sh" in proc.stderr
    assert not marker.exists(), "`sh -n` reads the command and runs nothing"


def test_red_exit_names_the_codes_that_mean_failed_tests(red_repo: Path) -> None:
    repo = red_repo
    before = fingerprint(repo)
    proc = red(repo, "sleep 0; exit 2", "--red-exit", "1")
    assert_refused_untouched(repo, proc, 3, before)
    assert "--red-exit lists only 1" in proc.stderr
    proc = red(repo, "sleep 0; false", "--red-exit", "3,4")
    assert_refused_untouched(repo, proc, 3, before)
    assert_clean_error(red(repo, "false", "--red-exit", "0"), 2)
    assert_clean_error(red(repo, "false", "--red-exit", "one"), 2)
    proc = red(repo, "sleep 0; exit 3", "--red-exit", "1,3")
    assert proc.returncode == 0, proc.stderr
    assert subjects(repo)[0] == "TDD RED: test_new.py"


def test_green_is_unchanged_exit_0_passes(red_repo: Path) -> None:
    repo = red_repo
    assert red(repo, "false").returncode == 0
    (repo / "impl.txt").write_text("done\n")
    proc = gitxact("tdd", "green", "--check", "test -f impl.txt && sleep 0", "impl.txt", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert subjects(repo)[:2] == ["TDD GREEN: impl.txt", "TDD RED: test_new.py"]


def test_library_red_exit_and_argv_lists(red_repo: Path) -> None:
    repo = red_repo
    ws = Workspace(repo)
    killed = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    before = fingerprint(repo)
    with pytest.raises(NotAFailingTestError, match="killed by SIGKILL"):
        ws.tdd(check=killed).red(["test_new.py"])
    assert fingerprint(repo) == before
    seq = ws.tdd(check=[sys.executable, "-c", "raise SystemExit(7)"], red_exit=[7])
    assert seq.red(["test_new.py"]).commit is not None
    seq.abort()


# -- land --check ---------------------------------------------------------------------------


def test_land_check_with_shell_syntax_is_run_by_sh(repo: Path) -> None:
    where = repo.parent / "wt-feature"
    git("worktree", "add", "-q", "-b", "feature", str(where), "main", cwd=repo)
    (where / "feature.txt").write_text("new\n")
    git("add", "feature.txt", cwd=where)
    git("commit", "-q", "-m", "feature", cwd=where)
    git("worktree", "remove", str(where), cwd=repo)
    before = git("rev-parse", "main", cwd=repo).strip()
    refused = gitxact(
        "land", "feature", "--onto", "main", "--check", "test -f feature.txt && false", "--json", cwd=repo
    )
    assert_clean_error(refused, 3)
    assert git("rev-parse", "main", cwd=repo).strip() == before
    proc = gitxact("land", "feature", "--onto", "main", "--check", "test -f feature.txt && echo ok-by-sh", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "ok-by-sh" in proc.stderr
    assert (repo / "feature.txt").exists()


# -- a SIGKILLed gitxact leaves no check running ---------------------------------------------

#: A check of plain words (no shell) that starts a grandchild, says its group, then waits.
GROUP_WRITER = (
    "import os, subprocess, sys, time\n"
    "child = subprocess.Popen(['sleep', '300'])\n"
    "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpgid(0)))\n"
    "os.rename(sys.argv[1] + '.tmp', sys.argv[1])\n"
    "time.sleep(300)\n"
)


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of group *pgid*, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def assert_group_ends(pgid: int) -> None:
    deadline = time.monotonic() + 30
    try:
        while group_members(pgid):
            assert time.monotonic() < deadline, f"the check's group {pgid} outlived gitxact: {group_members(pgid)}"
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # the test itself leaves nothing behind


def kill_during_check(argv: list[str], cwd: Path, pgid_file: Path) -> int:
    """Start gitxact, wait until its check says its group id, SIGKILL gitxact; the group id."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_file(pgid_file, "the check to start", proc)
        pgid = int(pgid_file.read_text().strip())
        assert len(group_members(pgid)) >= 2, "the check and its grandchild run"
    finally:
        proc.kill()
        proc.wait()
    return pgid


@pytest.mark.parametrize("kind", ["plain", "shell"])
def test_a_sigkilled_tdd_green_takes_its_whole_check_with_it(red_repo: Path, tmp_path: Path, kind: str) -> None:
    repo = red_repo
    assert red(repo, "false").returncode == 0
    (repo / "impl.txt").write_text("done\n")
    pgid_file = tmp_path / "pgid"
    if kind == "plain":
        script = tmp_path / "group_writer.py"
        script.write_text(GROUP_WRITER)
        check = f"{PY} {script} {pgid_file}"
    else:
        check = f"sleep 300 & echo $$ > {pgid_file}.tmp; mv {pgid_file}.tmp {pgid_file}; sleep 300"
    assert checks.parse(check).shell == (kind == "shell")
    pgid = kill_during_check([*GITXACT, "tdd", "green", "--check", check, "impl.txt"], repo, pgid_file)
    assert_group_ends(pgid)
    assert gitxact("recover", cwd=repo).returncode == 0
    assert subjects(repo)[0] == "TDD RED: test_new.py", "the interrupted green committed nothing"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_check_ends_with_its_group_and_gives_no_verdict(
    red_repo: Path, tmp_path: Path, signum: int
) -> None:
    repo = red_repo
    assert red(repo, "false").returncode == 0
    (repo / "impl.txt").write_text("done\n")
    before = fingerprint(repo)
    pgid_file = tmp_path / "pgid"
    check = f"sleep 300 & echo $$ > {pgid_file}.tmp; mv {pgid_file}.tmp {pgid_file}; wait"
    proc = subprocess.Popen(
        [*GITXACT, "tdd", "green", "--check", check, "impl.txt"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_file(pgid_file, "the check to start", proc)
        pgid = int(pgid_file.read_text())
        proc.send_signal(signum)  # as Ctrl-C or a kill would: gitxact passes it on to the group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted; nothing was committed" in err
    assert_group_ends(pgid)
    assert fingerprint(repo) == before, "no verdict: nothing committed, nothing rolled back"
    assert Workspace(repo).transactions.current() is not None, "the sequence is still at red"


def test_a_sigkilled_land_takes_its_whole_check_with_it(repo: Path, tmp_path: Path) -> None:
    git("branch", "feature", cwd=repo)
    where = tmp_path / "wt-feature"
    git("worktree", "add", "-q", str(where), "feature", cwd=repo)
    (where / "feature.txt").write_text("new\n")
    git("add", "feature.txt", cwd=where)
    git("commit", "-q", "-m", "feature", cwd=where)
    git("worktree", "remove", str(where), cwd=repo)
    before = git("rev-parse", "main", cwd=repo).strip()
    pgid_file = tmp_path / "pgid"
    check = f"sleep 300 & echo $$ > {pgid_file}.tmp; mv {pgid_file}.tmp {pgid_file}; sleep 300"
    pgid = kill_during_check([*GITXACT, "land", "feature", "--onto", "main", "--check", check], repo, pgid_file)
    assert_group_ends(pgid)
    recover = gitxact("recover", "--json", cwd=repo)
    assert recover.returncode == 0, recover.stderr
    assert json.loads(recover.stdout)
    assert git("rev-parse", "main", cwd=repo).strip() == before, "the killed land moved nothing"


def running(pid: int) -> bool:
    """*pid* is a live process (a zombie has ended; only its parent has not read its status)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains *text*."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and running(int(entry.name)):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_gitxact_killed_before_it_heard_the_check_start_leaves_nothing(red_repo: Path, tmp_path: Path) -> None:
    """The supervisor's first line unread, its socket reset: the group ends all the same."""
    repo = red_repo
    assert red(repo, "false").returncode == 0
    (repo / "impl.txt").write_text("done\n")
    marker = str(tmp_path / "grandchild-marker")
    script = tmp_path / "spawner.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', sys.argv[1]])\n"
        "time.sleep(300)\n"
    )
    env = {"GITXACT_TEST_CRASHPOINT": "check-started-unread"}
    proc = gitxact("tdd", "green", "--check", f"{PY} {script} {marker}", "impl.txt", cwd=repo, env=env)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    deadline = time.monotonic() + 30
    try:
        while left := processes_mentioning(str(tmp_path)):
            assert time.monotonic() < deadline, f"left running: {left}"
            time.sleep(0.05)
    finally:
        for pid in processes_mentioning(str(tmp_path)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    assert gitxact("recover", cwd=repo).returncode == 0
    assert subjects(repo)[0] == "TDD RED: test_new.py"


def test_what_a_finished_check_left_running_is_ended(red_repo: Path, tmp_path: Path) -> None:
    """``sleep 300 &`` outlives the check's own shell; it must not outlive the check."""
    repo = red_repo
    pid_file = tmp_path / "background.pid"
    proc = red(repo, f"sleep 300 & echo $! > {pid_file}; exit 1")
    assert proc.returncode == 0, proc.stderr
    background = int(pid_file.read_text())
    deadline = time.monotonic() + 30
    try:
        while running(background):
            assert time.monotonic() < deadline, "the check's background sleep outlived it"
            time.sleep(0.02)
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(background, signal.SIGKILL)
