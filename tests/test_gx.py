"""`gx ARGS` behaves as `git ARGS`: output, exit code, stdin, TTY, signals, aliases.

Each passthrough shape runs with raw git in one repository and with gx in an exact
copy of it (same content, pinned dates, so even commit ids match), then compares
exit code, stdout and stderr.
"""

from __future__ import annotations

import contextlib
import os
import pty
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.imports import imported
from support.proc import GITXACT, GX, git, git_commit_paused_in_editor, gitxact, kill_group, run, wait_for_file

from gitxact.gx import cmdline

PINNED = {
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
    "MANPAGER": "cat",
    "MANWIDTH": "80",
}

#: (arguments after git/gx, stdin or None, run outside any repository?)
SHAPES: list[tuple[list[str], str | None, bool]] = [
    (["status"], None, False),
    (["status", "--porcelain=v2", "--branch"], None, False),
    (["log", "--oneline"], None, False),
    (["log", "--format=%s", "--", "README"], None, False),
    (["lg"], None, False),  # alias: log --oneline
    (["st"], None, False),  # alias: status -s
    (["sh", "one", "two"], None, False),  # !shell alias
    (["pl"], None, False),  # alias starting with a global option: -p log ...
    (["broken"], None, False),  # alias to a command that does not exist
    (["loop1"], None, False),  # recursive alias
    (["-c", "alias.cx=log --oneline -1", "cx"], None, False),
    (["nonexistent"], None, False),
    (["--frobnicate", "status"], None, False),
    (["-C", "sub", "status", "-s"], None, False),
    (["-C", "/nonexistent/x", "status"], None, False),
    (["-c", "core.abbrev=12", "log", "--oneline", "-1"], None, False),
    (["--git-dir=.git", "--work-tree=.", "status", "-s"], None, False),
    (["--no-pager", "log", "-1", "--format=%s"], None, False),
    (["-p", "log", "-1", "--format=%s"], None, False),
    (["--version"], None, False),
    (["-h"], None, False),
    (["commit", "-h"], None, False),
    (["status", "--help"], None, False),
    (["add", "--", "new.txt"], None, False),
    (["add", "-A", "--dry-run"], None, False),
    (["commit", "-m", "from gx", "-a"], None, False),
    (["commit", "-m", "nothing"], None, False),
    (["commit", "-q", "-a", "-F", "-"], "message from stdin\n", False),
    (["hash-object", "--stdin"], "hello\n", False),
    (["hash-object", "-w", "--stdin"], "hello\n", False),
    (["cat-file", "--batch-check"], "HEAD\nHEAD:README\nnope\n", False),
    (["apply", "--check"], "not a patch\n", False),
    (["show", "no-such-rev"], None, False),
    (["rev-parse", "--verify", "-q", "nope"], None, False),
    (["checkout", "no-such-branch"], None, False),
    (["branch", "-d", "no-such-branch"], None, False),
    (["config", "--get", "no.such"], None, False),
    (["grep", "-n", "hello"], None, False),
    (["grep", "no-match-anywhere"], None, False),
    (["diff", "--exit-code"], None, False),
    (["diff", "--stat", "--", "README"], None, False),
    (["stash", "list"], None, False),
    (["stash"], None, False),
    (["tag", "v9"], None, False),
    (["tag", "-l"], None, False),
    (["reset", "-q", "--hard"], None, False),
    (["status"], None, True),
    (["commit", "-m", "x"], None, True),
    (["init", "-q", "fresh"], None, True),
]


GX_MAIN = "import sys; from gitxact.gx.main import main; sys.exit(main())"


def _base(tmp: Path) -> Path:
    repo = tmp / "a" / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, **PINNED}
    for args in (
        ["init", "-q", "-b", "main"],
        ["config", "alias.lg", "log --oneline"],
        ["config", "alias.st", "status -s"],
        ["config", "alias.sh", '!echo "shell alias:" "$@"'],
        ["config", "alias.pl", "-p log --oneline -1"],
        ["config", "alias.broken", "no-such-command"],
        ["config", "alias.loop1", "loop2"],
        ["config", "alias.loop2", "loop1"],
    ):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    (repo / "README").write_text("hello\n")
    (repo / "sub").mkdir()
    (repo / "sub" / "file").write_text("in sub\n")
    subprocess.run(["git", "add", "."], cwd=repo, env=env, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=repo, env=env, check=True)
    (repo / "README").write_text("hello\nchanged\n")
    (repo / "new.txt").write_text("new\n")
    return repo


def _run(argv: list[str], cwd: Path, stdin: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **PINNED},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(("args", "stdin", "outside"), SHAPES, ids=[" ".join(s[0]) for s in SHAPES])
def test_gx_matches_git(tmp_path: Path, args: list[str], stdin: str | None, outside: bool) -> None:
    repo_a = _base(tmp_path)
    repo_b = tmp_path / "b" / "repo"
    shutil.copytree(tmp_path / "a", tmp_path / "b", symlinks=True)
    if outside:
        (tmp_path / "a" / "out").mkdir()
        (tmp_path / "b" / "out").mkdir()
    where_a = tmp_path / "a" / "out" if outside else repo_a
    where_b = tmp_path / "b" / "out" if outside else repo_b
    raw = _run(["git", *args], where_a, stdin)
    wrapped = _run([*GX, *args], where_b, stdin)
    assert wrapped.returncode == raw.returncode, (wrapped.stderr, raw.stderr)
    assert wrapped.stdout == raw.stdout.replace(str(tmp_path / "a"), str(tmp_path / "b"))
    assert wrapped.stderr == raw.stderr.replace(str(tmp_path / "a"), str(tmp_path / "b"))


def _imported(argv: list[str], cwd: Path) -> set[str]:
    """Modules imported by a gx run (printed before the exec)."""
    modules, proc = imported(["-c", GX_MAIN, *argv], cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return modules


HEAVY = {
    "pydantic",
    "click",
    "filelock",
    "git",  # GitPython
    "gitxact.state.store",
    "gitxact.core.repo",
    "gitxact.workspace",
    "gitxact.leases.records",
}


def test_read_only_fast_path_imports_nothing_heavy(repo: Path) -> None:
    modules = _imported(["status"], repo)
    assert "gitxact.gx.main" in modules
    assert not modules & HEAVY
    assert "subprocess" not in modules, "the fast path execs git; it never needs subprocess"
    assert not {"typing", "dataclasses"} & modules


def test_locked_path_imports_only_what_it_uses(repo: Path) -> None:
    """A locked gx (commit) pays for the lock layer and git, not for models or the CLI (issue 14)."""
    assert gitxact("worktree", "acquire", "a", cwd=repo).returncode == 0  # leases.json to read and check
    modules = _imported(["commit", "-q", "--allow-empty", "-m", "x"], repo)
    assert {"gitxact.gx.locked", "gitxact.locking.locks", "gitxact.leases.reader"} <= modules
    assert not modules & HEAVY
    assert not {"typing", "dataclasses", "inspect", "socket", "hashlib", "ctypes", "tempfile", "traceback"} & modules
    # The standard library's expensive imports too (each saves over 0.1 S: README, Benchmark:
    # start-up tricks): json and pathlib bring re and enum, subprocess brings signal's enums,
    # threading and contextlib bring collections.
    expensive = {"re", "enum", "json", "pathlib", "subprocess", "signal", "contextlib", "collections", "threading"}
    assert not expensive & modules, expensive & modules
    assert not {"random", "shlex", "functools", "locale", "gitxact.git.run", "gitxact.git.lockfiles"} & modules


def test_installed_gx_launcher_imports_no_re(repo: Path) -> None:
    """bin/gx, not pip's generated launcher (which imports re before gitxact runs)."""
    launcher = Path(sys.executable).parent / "gx"
    modules, proc = imported([str(launcher), "commit", "-q", "--allow-empty", "-m", "y"], repo)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "gitxact.gx.locked" in modules
    assert "re" not in modules


def test_alias_lookup_stays_light_too(repo: Path) -> None:
    git("config", "alias.st", "status -s", cwd=repo)
    modules = _imported(["st"], repo)
    assert not modules & HEAVY
    assert not {"subprocess", "re", "enum"} & modules, "git is asked for the alias through posix_spawn"


def test_read_only_command_becomes_git(repo: Path) -> None:
    """exec, not a child: the pid that gx started with is git itself."""
    proc = subprocess.Popen([*GX, "cat-file", "--batch"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while os.path.basename(os.readlink(f"/proc/{proc.pid}/exe")) != "git":
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        out, _ = proc.communicate(b"HEAD\n", timeout=30)
    assert proc.returncode == 0
    assert out.split()[1] == b"commit"


def test_killed_git_gives_128_plus_signal_and_releases_the_locks(repo: Path) -> None:
    proc = _run([*GX, "-c", "core.editor=kill -9 $PPID; :", "commit", "--allow-empty"], repo, None)
    assert proc.returncode == 128 + signal.SIGKILL
    assert "Traceback" not in proc.stderr
    again = _run([*GX, "commit", "-q", "--allow-empty", "-m", "after"], repo, None)
    assert again.returncode == 0, again.stderr


@contextlib.contextmanager
def _waiting_for_editor(argv: list[str], repo: Path, ready: Path) -> Iterator[subprocess.Popen[str]]:
    """A commit stopped in its editor, in a session of its own; killed and reaped however the test ends."""
    editor = f"exec >/dev/null 2>&1; touch {ready}; sleep 60; :"  # the sleep must not hold our pipes
    proc = subprocess.Popen(
        [*argv, "-c", f"core.editor={editor}", "commit", "--allow-empty"],
        cwd=repo,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_file(ready, "the editor to start")
        yield proc
    finally:
        kill_group(proc)  # type: ignore[arg-type]  # the editor's sleep too, if still there
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def _interrupt(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """Ctrl-C at the terminal: SIGINT to the foreground group, pressed again if it was lost.

    A SIGINT that lands on the editor's shell between two of its commands can be taken
    by the shell and leave its `sleep` running (seen once in a loaded CI run); a person
    presses Ctrl-C again, and so does this.
    """
    for _ in range(10):
        with contextlib.suppress(ProcessLookupError):  # the group may be gone already
            os.killpg(proc.pid, signal.SIGINT)
        try:
            return proc.communicate(timeout=6)
        except subprocess.TimeoutExpired:
            continue
    return proc.communicate(timeout=60)


def test_ctrl_c_reaches_git_and_gx_returns_its_code(repo: Path, tmp_path: Path) -> None:
    """The terminal sends SIGINT to the whole foreground group: git decides, gx waits."""
    codes = []
    for name, argv in (("git", ["git"]), ("gx", GX)):
        with _waiting_for_editor(argv, repo, tmp_path / f"ready-{name}") as proc:
            _, err = _interrupt(proc)
        assert "Traceback" not in err
        assert "interrupted" not in err, "gx itself must not have been interrupted"
        codes.append(128 - proc.returncode if proc.returncode < 0 else proc.returncode)  # as a shell reports it
    assert codes[1] == codes[0] != 0
    assert _run([*GX, "commit", "-q", "--allow-empty", "-m", "after"], repo, None).returncode == 0


def test_sigterm_is_passed_on_to_git(repo: Path, tmp_path: Path) -> None:
    with _waiting_for_editor(GX, repo, tmp_path / "ready") as proc:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM


def _on_tty(argv: list[str], cwd: Path) -> bytes:
    main, child = pty.openpty()
    proc = subprocess.Popen(argv, cwd=cwd, stdin=child, stdout=child, stderr=child, env={**os.environ, **PINNED})
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(main)
    return b"".join(chunks)


@pytest.mark.parametrize("args", [["status"], ["commit", "--dry-run"]], ids=["exec path", "locked path"])
def test_colors_on_a_terminal_like_git(repo: Path, args: list[str]) -> None:
    (repo / "README").write_text("changed\n")
    raw = _on_tty(["git", "-c", "color.ui=auto", *args], repo)
    wrapped = _on_tty([*GX, "-c", "color.ui=auto", *args], repo)
    assert b"\x1b[" in raw
    assert wrapped == raw


def test_gitxact_git_is_gx(repo: Path) -> None:
    (repo / "sub").mkdir()
    (repo / "sub" / "f").write_text("x\n")
    for args in (["--help"], ["status", "-s"], ["nonexistent"]):
        raw = _run(["git", *args], repo, None)
        wrapped = _run([*GITXACT, "git", *args], repo, None)
        assert (wrapped.returncode, wrapped.stdout) == (raw.returncode, raw.stdout)
    raw = _run(["git", "-C", "sub", "status", "-s", "."], repo, None)
    wrapped = _run([*GITXACT, "-C", "sub", "git", "status", "-s", "."], repo, None)
    assert (wrapped.returncode, wrapped.stdout) == (raw.returncode, raw.stdout)
    listing = _run([*GITXACT, "--help"], repo, None).stdout
    assert "git" in listing.split()
    assert "the same as gx" in listing
    done = _run([*GITXACT, "git", "commit", "-q", "--allow-empty", "-m", "via gitxact git"], repo, None)
    assert done.returncode == 0, done.stderr
    assert git("log", "-1", "--format=%s", cwd=repo).strip() == "via gitxact git"


def test_worktree_named_beyond_ascii_gets_its_own_lock(repo: Path, tmp_path: Path) -> None:
    """git keeps `wörk` as the worktree id; gx names its lock by a hash instead of failing."""
    wt = tmp_path / "wörk"
    git("worktree", "add", "-q", "-b", "umlaut", str(wt), cwd=repo)
    proc = _run([*GX, "commit", "-q", "--allow-empty", "-m", "x"], wt, None)
    assert proc.returncode == 0, proc.stderr
    stats = (repo / ".git" / "gitxact" / "events" / "events.log").read_text()
    assert '"lock":"worktree.id-' in stats


def test_a_killed_raw_gits_index_lock_is_left_to_recover(repo: Path, tmp_path: Path) -> None:
    """gx never takes away an index.lock it did not make: a live git's, or a killed raw git's.

    gx cannot tell a killed raw git's lock from one a live git is about to use (or one made
    by hand to stand for a running git), so it leaves it, as git does; `gitxact recover`,
    run by a person after a crash, proves the owner dead and removes it. The lock a gx's
    own git leaves when killed is gx's to remove (tests/test_killed_holders.py).
    """
    lock = repo / ".git" / "index.lock"
    (repo / "README").write_text("changed while an editor is open\n")
    raw = git_commit_paused_in_editor(repo, tmp_path / "ready", "-a")
    try:
        assert lock.exists(), "git commit -a holds index.lock while the editor runs"
        (repo / "new.txt").write_text("new\n")
        busy = _run([*GX, "add", "new.txt"], repo, None)
        assert busy.returncode != 0
        assert "index.lock" in busy.stderr
        assert "removed" not in busy.stderr
        assert lock.exists(), "a live git's lock is never taken away"
    finally:
        kill_group(raw)
    assert lock.exists()
    refused = _run([*GX, "add", "new.txt"], repo, None)
    assert refused.returncode != 0, "a raw git's leftover is not gx's to remove"
    assert lock.exists()
    recovered = _run([*GITXACT, "recover"], repo, None)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    assert not lock.exists()
    proc = _run([*GX, "add", "new.txt"], repo, None)
    assert proc.returncode == 0, proc.stderr
    assert _run([*GX, "commit", "-q", "-m", "after the kill"], repo, None).returncode == 0
    assert git("show", "--name-only", "--format=", "HEAD", cwd=repo).split() == ["new.txt"]
    assert git("status", "--porcelain", cwd=repo).split() == ["M", "README"]  # the killed commit -a's change stays
    git("fsck", "--strict", cwd=repo)


def test_gx_runs_what_git_runs_even_when_its_own_settings_cannot_be_read(tmp_path: Path) -> None:
    """A core.worktree that does not resolve: git runs the command; gx must not refuse it over its settings."""
    repo = tmp_path / "r"
    git("init", "-q", str(repo), cwd=tmp_path)
    results = []
    for argv in (["git"], GX):
        git("config", "core.worktree", "../nope", cwd=repo)
        env = {"GIT_WORK_TREE": "."}
        proc = run([*argv, "config", "--unset", "core.worktree"], repo, {**PINNED, **env})
        results.append(proc.returncode)
        assert "Traceback" not in proc.stderr
    assert results == [0, 0]


#: Holds the main worktree's lock: for a second, or until the file argv[3] appears.
_HOLD_WORKTREE_LOCK = """
import pathlib, sys, time
from gitxact.locking.locks import Locks
with Locks(pathlib.Path(sys.argv[1])).worktree("main"):
    pathlib.Path(sys.argv[2]).touch()
    if len(sys.argv) > 3:
        deadline = time.monotonic() + 120
        while not pathlib.Path(sys.argv[3]).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        time.sleep(1.0)
"""


def test_a_bad_gitxact_value_does_not_stop_gx_either(repo: Path, tmp_path: Path) -> None:
    """gx reads gitxact.lockTimeout only when it must wait; a bad value is then named once."""
    git("config", "gitxact.lockTimeout", "soon", cwd=repo)
    proc = _run([*GX, "commit", "-q", "--allow-empty", "-m", "x"], repo, None)
    assert proc.returncode == 0, proc.stderr
    assert "gitxact.lockTimeout" not in proc.stderr, "a free lock needs no timeout"
    held = tmp_path / "held"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WORKTREE_LOCK, str(repo / ".git/gitxact/locks"), str(held)])
    try:
        wait_for_file(held, "the worktree lock", holder)
        proc = _run([*GX, "commit", "-q", "--allow-empty", "-m", "y"], repo, None)
    finally:
        holder.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("gitxact.lockTimeout") == 1, "said once, then the default is used"
    assert git("rev-list", "--count", "HEAD", cwd=repo).strip() == "3"


def test_gx_init_separate_git_dir_moves_the_repository_like_git(tmp_path: Path) -> None:
    """git moves .git away: gx must hold nothing inside it, and report git's result."""
    repo = tmp_path / "r"
    git("init", "-q", str(repo), cwd=tmp_path)
    git("commit", "-q", "--allow-empty", "-m", "x", cwd=repo)
    proc = _run([*GX, "init", "-q", "--separate-git-dir", str(tmp_path / "moved.git")], repo, None)
    assert proc.returncode == 0, proc.stderr
    assert "internal error" not in proc.stderr
    assert (repo / ".git").is_file()
    assert (tmp_path / "moved.git" / "HEAD").is_file()
    assert git("rev-parse", "--git-dir", cwd=repo).strip() == str(tmp_path / "moved.git")


def test_a_ref_update_left_open_does_not_hold_up_other_ref_updates(repo: Path) -> None:
    """`update-ref --stdin` waiting on its input: git answers a second update-ref at once, and so does gx."""
    git("config", "gitxact.lockTimeout", "2", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    first = subprocess.Popen(
        [*GX, "update-ref", "--stdin"], cwd=repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert first.stdin is not None
        first.stdin.write(f"create refs/heads/one {head}\n".encode())
        first.stdin.flush()
        second = _run([*GX, "update-ref", "refs/heads/two", head], repo, None)
        assert second.returncode == 0, second.stderr
        assert first.poll() is None, "the first is still waiting for its input"
    finally:
        first.communicate(timeout=30)
    assert first.returncode == 0
    assert git("rev-parse", "refs/heads/one", "refs/heads/two", cwd=repo).split() == [head, head]


def _index_mtime_of(repo: Path, name: str) -> str:
    """The mtime git's index records for *name* (``ls-files --debug``), read without refreshing."""
    out = subprocess.run(
        ["git", "ls-files", "--debug", name],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
    ).stdout
    return next(line.split()[1] for line in out.splitlines() if line.strip().startswith("mtime:"))


def _stat_dirty(repo: Path) -> tuple[Path, str]:
    """A tracked file whose stat data no longer matches the index (same content, new mtime)."""
    path = repo / "stat-dirty.txt"
    path.write_text("same\n")
    git("add", path.name, cwd=repo)
    git("commit", "-q", "-m", "stat-dirty", cwd=repo)
    os.utime(path, (1_700_000_000, 1_700_000_000))
    return path, _index_mtime_of(repo, path.name)


def test_gx_status_refreshes_the_index_when_the_worktree_is_free(repo: Path) -> None:
    """Issue 13 B: like git, status writes refreshed stat data back (t7508 51, 114-116)."""
    path, before = _stat_dirty(repo)
    proc = run([*GX, "status", "--porcelain"], repo)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    after = _index_mtime_of(repo, path.name)
    assert after != before
    assert after.startswith("1700000000:")
    assert gitxact("doctor", cwd=repo).returncode == 0, "no ticket or lock left behind"


def test_gx_status_refreshes_below_a_ceiling_directory_as_git_does(repo: Path, tmp_path: Path) -> None:
    """git's own test suite sets GIT_CEILING_DIRECTORIES for every test (t7508 51, 114-116)."""
    path, before = _stat_dirty(repo)
    (repo / "sub").mkdir()
    env = {"GIT_CEILING_DIRECTORIES": f"relative/ignored:{tmp_path}"}
    proc = run([*GX, "status", "--porcelain"], repo / "sub", env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    assert _index_mtime_of(repo, path.name) != before
    # A ceiling at the repository itself: git does not go up into it, so finds no repository.
    above = run([*GX, "status"], repo / "sub", env={**os.environ, "GIT_CEILING_DIRECTORIES": str(repo)})
    assert above.returncode == 128
    assert "not a git repository" in above.stderr


def test_gx_status_skips_the_refresh_while_someone_holds_the_worktree(repo: Path, tmp_path: Path) -> None:
    path, before = _stat_dirty(repo)
    held, done = tmp_path / "held", tmp_path / "done"
    locks = str(repo / ".git/gitxact/locks")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_WORKTREE_LOCK, locks, str(held), str(done)])
    try:
        wait_for_file(held, "the worktree lock", holder)
        proc = run([*GX, "status", "--porcelain"], repo)
        assert holder.poll() is None, "status returned while the holder still held the lock"
        refreshed = _index_mtime_of(repo, path.name)
    finally:
        done.touch()
        holder.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert refreshed == before, "no index.lock taken under the holder"


def test_gx_status_with_a_locating_option_runs_without_the_refresh(repo: Path, tmp_path: Path) -> None:
    path, before = _stat_dirty(repo)
    proc = run([*GX, "-C", str(repo), "status", "--porcelain"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert _index_mtime_of(repo, path.name) == before


@pytest.mark.parametrize(
    "worktree_id",
    ["main", "agent-1", "a.b_c", "_x", "x" * 100, "x" * 101, "wörk", ".hidden", "a..b", "x.lock", "-a", "a b", "x."],
)
def test_status_refresh_names_the_lock_as_the_lock_layer_does(worktree_id: str) -> None:
    from gitxact.errors import InvalidNameError
    from gitxact.gx import refresh
    from gitxact.locking import naming
    from gitxact.locking.locks import worktree_key
    from gitxact.util.names import validate_name

    slug = worktree_key(worktree_id).slug
    assert refresh.lock_name(worktree_id) in (slug, None)
    if slug == f"worktree.{worktree_id}":
        assert refresh.lock_name(worktree_id) == slug, "a plain id is always refreshed"
    try:
        spelled = validate_name(worktree_id, "worktree id", limit=naming.WORKTREE_ID_LIMIT) == worktree_id
    except InvalidNameError:
        spelled = False
    assert naming.plain_worktree_id(worktree_id) is spelled, "the lock layer spells names as validate_name does"


def test_gx_status_stays_light_with_its_refresh(repo: Path) -> None:
    modules = _imported(["status"], repo)
    assert "gitxact.gx.refresh" in modules
    assert not modules & HEAVY
    assert not {"subprocess", "typing", "dataclasses", "json", "pathlib", "gitxact.locking.locks"} & modules
    # The lock names and the choosing prefix come from the lean core, which brings nothing else.
    assert "gitxact.locking.naming" in modules
    assert not {"gitxact.locking.tickets", "gitxact.util.names"} & modules


ALIAS_VALUES = [
    "a b",
    "a \t b",
    '"a b" c',
    "'a b' c",
    "a\\ b",
    '"a\\"b"',
    "'a\\b'",
    'a"b c"d',
    "x ''",
    '"tab\\there"',
    "'it'\\''s'",
    '"unclosed',
    "'unclosed",
    "bad\\",
]


@pytest.mark.parametrize("value", ALIAS_VALUES)
def test_alias_words_are_git_s_own(repo: Path, value: str) -> None:
    """gx splits an alias as git does: git itself prints the words it made (rev-parse --sq-quote)."""
    argv = ["git", "-c", f"alias.q=rev-parse --sq-quote {value}", "q"]
    proc = subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False)
    ours = cmdline.split_alias(f"rev-parse --sq-quote {value}")
    if proc.returncode != 0:
        assert ours is None, proc.stderr
        return
    assert ours is not None
    assert ours[2:] == shlex.split(proc.stdout), proc.stdout
