"""Process identity: a recorded process is dead only when that is proven (fails closed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from gitxact.util.identity import ProcessIdentity, host_name, owner_is_stale, process_start_token


def test_a_live_process_is_alive_and_a_reaped_one_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        who = ProcessIdentity.of(child.pid)
        assert who.start is not None
        assert not who.is_dead()
    finally:
        child.kill()
        child.wait()
    assert who.is_dead()


def test_a_recycled_pid_is_dead_and_an_unknown_start_is_alive() -> None:
    me = ProcessIdentity.current()
    assert me.start == process_start_token(os.getpid())
    assert not owner_is_stale(me.pid, me.host, me.start)
    assert owner_is_stale(me.pid, me.host, (me.start or 0) + 1), "same pid, other start: a recycled pid"
    assert not owner_is_stale(me.pid, me.host, None), "no start token recorded: cannot prove it is another"


def test_another_host_is_never_judged_from_here() -> None:
    assert not owner_is_stale(2**22 + 12345, host_name() + "-elsewhere", 1)
    assert not ProcessIdentity(pid=2**22 + 12345, host="elsewhere", start=None).is_dead()


def test_provably_alive_needs_this_host_the_pid_and_its_start_time() -> None:
    """The stronger claim a lease's keep-alive rests on: neither dead nor unknown."""
    child = subprocess.Popen(["sleep", "60"])
    try:
        who = ProcessIdentity.of(child.pid)
        assert who.is_alive()
        assert not ProcessIdentity(pid=child.pid, host=who.host, start=None).is_alive(), "no start time: unknown"
        recycled = ProcessIdentity(pid=child.pid, host=who.host, start=(who.start or 0) + 1)
        assert not recycled.is_alive()
        assert recycled.is_dead()
        elsewhere = ProcessIdentity(pid=child.pid, host=who.host + "-elsewhere", start=who.start)
        assert not elsewhere.is_alive()
        assert not elsewhere.is_dead()
        child.kill()
        deadline = time.monotonic() + 30
        while not who.is_dead():  # a zombie until reaped: dead already, never alive
            assert time.monotonic() < deadline, "the killed child never read as dead"
            time.sleep(0.01)
        assert not who.is_alive()
    finally:
        child.kill()
        child.wait()
    assert not who.is_alive()
    assert who.is_dead()
