"""Process identity: a recorded process is dead only when that is proven (fails closed)."""

from __future__ import annotations

import os
import subprocess
import sys

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
