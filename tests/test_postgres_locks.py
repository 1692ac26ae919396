"""Named locks on both backends (issue 17): exclusion, timeouts naming the holder, a SIGKILLed
holder releasing, first come first served (PostgreSQL's queue, this host's tickets), and a
lost session said."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psycopg
import pytest
from support.fleet import start_named_holder
from support.proc import git, gitxact, kill_group

from fixtures.postgres import PostgresServer
from gitxact import LockOrderError, LockTimeoutError, UsageError, Workspace
from gitxact.backends.base import BackendUnavailableError
from gitxact.backends.named import open_named_locks
from gitxact.errors import LockLostError


def test_a_timeout_names_the_holder_and_a_killed_holder_releases(two_clones: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = two_clones
    holder = start_named_holder(first, tmp_path / "ready", "exclusive", "host-a")
    locks = open_named_locks(Workspace(second, agent="contender"))
    try:
        with pytest.raises(LockTimeoutError) as timed_out:
            locks.hold("land", timeout=0.2).__enter__()
        message = timed_out.value.message
        assert f"pid {holder.pid}" in message, message
        assert "(agent lander)" in message, message
        [party] = locks.holders("land")
        assert (party.pid, party.agent, party.mode) == (holder.pid, "lander", "exclusive")
        if locks.kind == "postgresql":
            assert party.host == "host-a"
        # Shared waits for an exclusive holder too.
        with pytest.raises(LockTimeoutError):
            locks.hold("land", "shared", timeout=0).__enter__()
        kill_group(holder)  # SIGKILL: no release ever runs
        with locks.hold("land", timeout=30) as grant:  # the lock died with its holder
            grant.check()
            assert [p.agent for p in locks.holders("land")] == ["contender"]
        assert locks.holders("land") == []
    finally:
        if holder.poll() is None:
            kill_group(holder)
        locks.close()


def test_shared_holders_share_and_exclusive_waits(two_clones: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = two_clones
    holder = start_named_holder(first, tmp_path / "ready", "shared", "host-a")
    locks = open_named_locks(Workspace(second))
    try:
        with locks.hold("land", "shared", timeout=5):
            assert sorted(p.mode for p in locks.holders("land")) == ["shared", "shared"]
        with pytest.raises(LockTimeoutError):
            locks.hold("land", "exclusive", timeout=0.2).__enter__()
    finally:
        kill_group(holder)
        locks.close()


@pytest.mark.parametrize("backend", ["files", "postgresql"])
def test_reentrant_ordered_and_checked_names(request: pytest.FixtureRequest, repo: Path, backend: str) -> None:
    where = request.getfixturevalue("pg_repo") if backend == "postgresql" else repo
    locks = open_named_locks(Workspace(where))
    try:
        with locks.hold("b"), locks.hold("b"):  # reentrant in one thread
            with pytest.raises(LockOrderError):
                locks.hold("a").__enter__()  # names are taken in order
            with locks.hold("c"):
                pass
        with locks.hold("s", "shared"), pytest.raises(LockOrderError):
            locks.hold("s", "exclusive").__enter__()  # no upgrade
        for bad in ("tracker", "git.config", "../x", ""):
            with pytest.raises(UsageError):
                locks.hold(bad).__enter__()
        # Another thread is another holder, as with the file locks.
        outcome: list[str] = []
        with locks.hold("t"):
            thread = threading.Thread(target=lambda: outcome.append(_try(locks, "t")))
            thread.start()
            thread.join()
        assert outcome == ["timeout"]
    finally:
        locks.close()


def _try(locks: object, name: str) -> str:
    try:
        with locks.hold(name, timeout=0):  # type: ignore[attr-defined]
            return "got"
    except LockTimeoutError:
        return "timeout"


_WAITER = textwrap.dedent(
    """
    import os, sys, time
    from gitxact import Workspace
    from gitxact.backends.named import open_named_locks
    repo, mode, log, index = sys.argv[1:5]
    locks = open_named_locks(Workspace(repo))
    with locks.hold("fifo", mode, timeout=60):
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (index + "\\n").encode())
        os.close(fd)
        time.sleep(0.05)
    """
)


def _queued(ws: Workspace, locks: object, name: str) -> int:
    """How many wait for named lock *name*: PostgreSQL's queue, or this host's ticket queue."""
    from gitxact.backends.pg_locks import PostgresNamedLocks
    from gitxact.locking.locks import resource_key

    if isinstance(locks, PostgresNamedLocks):
        return len(locks.waiting_sessions(name))
    return sum(1 for party in ws.locks.parties(resource_key(name)) if not party.holding)


def test_waiters_are_served_in_arrival_order(backend_repo: Path, tmp_path: Path) -> None:
    """Each waiter starts only once the previous one shows as queued (``pg_locks``, or the
    ticket queue on files); the grants then follow arrival order, a shared request never
    passing a queued exclusive."""
    ws = Workspace(backend_repo)
    locks = open_named_locks(ws)
    log = tmp_path / "order"
    modes = ["exclusive", "shared", "exclusive", "shared", "shared", "exclusive"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with locks.hold("fifo"):
            for index, mode in enumerate(modes):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-c", _WAITER, str(backend_repo), mode, str(log), str(index)],
                        cwd=backend_repo,
                        stderr=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
                deadline = time.monotonic() + 60
                while _queued(ws, locks, "fifo") <= index:
                    assert procs[-1].poll() is None, f"waiter {index} ended before it queued"
                    assert time.monotonic() < deadline, "the waiter never queued"
                    time.sleep(0.02)
            # A waiter SIGKILLed in the queue leaves it: nobody waits for it, its turn is skipped.
            doomed = subprocess.Popen(
                [sys.executable, "-c", _WAITER, str(backend_repo), "exclusive", str(log), "doomed"],
                cwd=backend_repo,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            procs.append(doomed)
            deadline = time.monotonic() + 60
            while _queued(ws, locks, "fifo") <= len(modes):
                assert doomed.poll() is None, "the doomed waiter ended before it queued"
                assert time.monotonic() < deadline, "the doomed waiter never queued"
                time.sleep(0.02)
            kill_group(doomed)
            while _queued(ws, locks, "fifo") > len(modes):
                assert time.monotonic() < deadline, "the killed waiter stayed in the queue"
                time.sleep(0.02)
        for proc in procs[: len(modes)]:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill_group(proc)
        locks.close()
    order = log.read_text().split()
    assert "doomed" not in order
    # Shared neighbours (3, 4) hold together and may log in either order; nobody else may move.
    assert order[:3] == ["0", "1", "2"]
    assert sorted(order[3:5]) == ["3", "4"]
    assert order[5] == "5"


def test_a_lost_session_is_said_not_ignored(pg_repo: Path, postgres_server: PostgresServer) -> None:
    locks = open_named_locks(Workspace(pg_repo))
    try:
        grant = locks.acquire("land")  # type: ignore[attr-defined]
        [holder] = locks.holders("land")
        with psycopg.connect(f"host={postgres_server.socket_dir} user=gitxact dbname=postgres", autocommit=True) as c:
            c.execute(
                "SELECT pg_terminate_backend(session) FROM gitxact.lock_holders WHERE name = 'land' AND pid = %s",
                (holder.pid,),
            )
        with pytest.raises(LockLostError):
            grant.check()
        with pytest.raises(LockLostError):
            locks.release("land")
        with locks.hold("land", timeout=5):  # a new session takes it again
            pass
    finally:
        locks.close()


def test_an_unreachable_database_is_exit_75_for_locks(repo: Path) -> None:
    git("config", "gitxact.backend", "postgresql:///postgres?host=/nonexistent/x&user=nobody", cwd=repo)
    locks = open_named_locks(Workspace(repo))
    with pytest.raises(BackendUnavailableError) as unreachable:
        locks.hold("land").__enter__()
    assert unreachable.value.exit_code == 75


def test_gitxact_lock_name_on_either_backend(two_clones: tuple[Path, Path], tmp_path: Path) -> None:
    """`gitxact lock --name NAME -- CMD`: COMMAND's exit code; exit 75 naming the holder while
    another host (or process) holds NAME; reserved and bad names are exit 2."""
    first, second = two_clones
    ran = gitxact("lock", "--name", "land", "--", "sh", "-c", "exit 4", cwd=second)
    assert ran.returncode == 4, ran.stderr
    holder = start_named_holder(first, tmp_path / "ready", "exclusive", "host-a")
    try:
        busy = gitxact("lock", "--name", "land", "--timeout", "0.2", "--", "true", cwd=second)
        assert busy.returncode == 75, busy.stderr
        assert f"pid {holder.pid}" in busy.stderr
        other = gitxact("lock", "--name", "deploy", "--timeout", "5", "--", "true", cwd=second)
        assert other.returncode == 0, "another name is another lock"
    finally:
        kill_group(holder)
    for bad in ("tracker", "../x"):
        assert gitxact("lock", "--name", bad, "--", "true", cwd=second).returncode == 2


_UNANSWERED = textwrap.dedent(
    """
    import sys, threading
    from gitxact import LockLostError, Workspace
    from gitxact.backends.named import open_named_locks
    locks = open_named_locks(Workspace(sys.argv[1]))
    told = threading.Event()
    said = []
    grant = locks.acquire("deploy", on_lost=lambda error: (said.append(error), told.set()))
    print(grant.session, grant.fence, flush=True)
    assert told.wait(60), "never told"
    try:
        grant.check()
    except LockLostError as error:
        print("check", error.exit_code, error is said[0], error.message, flush=True)
    try:
        locks.release("deploy")
    except LockLostError as error:
        print("release", error.exit_code, flush=True)
    """
)


def test_a_holder_whose_server_stops_answering_gives_the_lock_up(pg_repo: Path) -> None:
    """Issue 25: the server's backend for the holder's session is stopped (SIGSTOP), so
    nothing the holder sends is answered: within the holder's bound it calls the callback,
    and check() and release raise LockLostError (exit 75). The next grant's fence is larger."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _UNANSWERED, str(pg_repo)],
        cwd=pg_repo,
        env={**os.environ, "GITXACT_TEST_DEAD_PEER_BOUND": "5"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    backend = 0
    try:
        assert holder.stdout is not None
        backend, fence = (int(word) for word in holder.stdout.readline().split())
        os.kill(backend, signal.SIGSTOP)
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
        check, release = out.splitlines()
        assert check.startswith("check 75 True named lock 'deploy' was given up: PostgreSQL did not answer within 2.5s")
        assert release == "release 75"
    finally:
        if backend:
            os.kill(backend, signal.SIGCONT)  # it finds its client gone and ends, freeing the lock
        if holder.poll() is None:
            kill_group(holder)  # type: ignore[arg-type]
    locks = open_named_locks(Workspace(pg_repo))
    try:
        with locks.hold("deploy", timeout=30) as grant:
            assert grant.fence is not None
            assert grant.fence > fence
    finally:
        locks.close()


def test_every_grant_gets_a_larger_fence_on_either_backend(two_clones: tuple[Path, Path]) -> None:
    """`GITXACT_FENCE` grows with every grant of a name, from any host (clone); other names
    count on their own; the library returns the same number as ``grant.fence``."""
    first, second = two_clones
    seen = []
    for where in (first, second, first):
        ran = gitxact("lock", "--name", "deploy", "--", "sh", "-c", 'echo "$GITXACT_FENCE"', cwd=where)
        assert ran.returncode == 0, ran.stderr
        seen.append(int(ran.stdout))
    assert seen == sorted(set(seen)), seen
    other = gitxact("lock", "--name", "migrate", "--", "sh", "-c", 'echo "$GITXACT_FENCE"', cwd=second)
    assert int(other.stdout) == 1
    locks = open_named_locks(Workspace(second))
    try:
        with locks.hold("deploy") as grant, locks.hold("deploy") as nested:
            assert grant.fence == nested.fence == seen[-1] + 1  # a reentrant grant is the same grant
    finally:
        locks.close()


def test_a_damaged_fence_record_is_refused_never_restarted(repo: Path) -> None:
    Workspace(repo).init()
    assert gitxact("lock", "--name", "deploy", "--", "true", cwd=repo).returncode == 0
    record = Path(git("rev-parse", "--git-common-dir", cwd=repo).strip())
    record = (repo / record if not record.is_absolute() else record) / "gitxact" / "locks" / "fence.deploy"
    record.write_text("garbage\n")
    ran = gitxact("lock", "--name", "deploy", "--", "true", cwd=repo)
    assert ran.returncode == 1, ran.stderr
    assert "not a fencing token" in ran.stderr
    record.unlink()
    record.symlink_to(repo / "elsewhere")  # never followed, never written through
    ran = gitxact("lock", "--name", "deploy", "--", "true", cwd=repo)
    assert ran.returncode == 1, ran.stderr
    assert "cannot open the fencing token" in ran.stderr
    assert not (repo / "elsewhere").exists()


def test_lock_name_hands_the_terminal_to_its_command(repo: Path) -> None:
    """CMD runs in a process group of its own (so a lost lock can end all of it); on a
    terminal it is given the terminal, or its first read would stop it (SIGTTIN)."""
    import pty
    import select

    Workspace(repo).init()
    pid, fd = pty.fork()
    if pid == 0:  # the child: a session whose controlling terminal is the pty
        os.chdir(repo)
        os.execv(sys.executable, [sys.executable, "-m", "gitxact", "lock", "--name", "tty", "--",
                                  "sh", "-c", "read line; echo got:$line"])  # fmt: skip
    out = b""
    try:
        os.write(fd, b"hello\n")
        deadline = time.monotonic() + 60
        while b"got:hello" not in out:
            assert time.monotonic() < deadline, f"the command never read the terminal: {out!r}"
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    out += os.read(fd, 1024)
                except OSError:  # the pty closed: everything was read
                    break
        assert b"got:hello" in out, out
        _, status = os.waitpid(pid, 0)
        pid = 0
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        if pid:  # gitxact's group, and its command's (a group of its own, found among its children)
            with contextlib.suppress(OSError):
                for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
                    os.killpg(int(child), signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def test_lock_name_passes_sigterm_to_its_commands_group(repo: Path, tmp_path: Path) -> None:
    """A SIGTERM sent to `gitxact lock --name` reaches CMD's group (CMD is no longer in
    gitxact's), and gitxact exits with CMD's status once it is gone, the lock free."""
    from support.proc import GITXACT, wait_for_file

    Workspace(repo).init()
    ready = tmp_path / "ready"
    script = f'trap "echo got-term; exit 7" TERM; touch {ready}; while :; do sleep 0.1; done'
    proc = subprocess.Popen(
        [*GITXACT, "lock", "--name", "deploy", "--", "sh", "-c", script],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_file(ready, "the command to start", proc)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 7
        assert b"got-term" in out
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert gitxact("lock", "--name", "deploy", "--timeout", "5", "--", "true", cwd=repo).returncode == 0
