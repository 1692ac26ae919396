"""The event record (issue 18): concurrent appenders, a writer killed mid-line, rotation.

Real processes append through :class:`gitxact.util.eventlog.EventLog`; the test reads
the files back and counts: every event a writer finished is there exactly once, the
one a writer was killed in the middle of is the only thing lost, and the record stays
within its bound.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from support.proc import gitxact, wait_for_file

from gitxact.util.eventlog import EventLog, parse_line

APPENDER = """
import os, sys, time
from gitxact.util.eventlog import EventLog
folder, limit, keep, count, name, go = sys.argv[1:7]
log = EventLog(folder, limit=int(limit), keep=int(keep))
open(go + "." + name, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
for seq in range(int(count)):
    log.emit("probe", name, seq=seq, pad="x" * 40)
"""

WRITERS = 8
EACH = 300


def _appender(folder: Path, name: str, go: Path, *, count: int = EACH, limit: int, keep: int, **env: str):
    return subprocess.Popen(
        [sys.executable, "-c", APPENDER, str(folder), str(limit), str(keep), str(count), name, str(go)],
        env={**os.environ, **env},
    )


def _raw_lines(log: EventLog) -> list[bytes]:
    lines: list[bytes] = []
    for name in log.files():
        if os.path.exists(name):
            lines += [raw for raw in Path(name).read_bytes().split(b"\n") if raw]
    return lines


def test_eight_appenders_and_a_torn_write_lose_only_the_torn_event(tmp_path: Path) -> None:
    folder, go = tmp_path / "events", tmp_path / "go"
    # Rotates about 20 times under the writers, and keeps everything: enough files for all
    # the "killed" writer can write (100,000 events) however late the test kills it, so a
    # loaded machine never rotates the eight writers' first events away.
    limit, keep = 16 * 1024, 1000
    writers = [_appender(folder, f"w{i}", go, limit=limit, keep=keep) for i in range(WRITERS)]
    # A ninth, killed at a moment the test does not choose, and a tenth that dies mid-line.
    killed = _appender(folder, "killed", go, count=100_000, limit=limit, keep=keep)
    torn = _appender(folder, "torn", go, count=1, limit=limit, keep=keep, GITXACT_TEST_CRASHPOINT="event-torn")
    try:
        for name in [*(f"w{i}" for i in range(WRITERS)), "killed", "torn"]:
            wait_for_file(Path(f"{go}.{name}"), f"appender {name} to start")
        go.touch()
        assert torn.wait(timeout=60) == -signal.SIGKILL
        time.sleep(0.05)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=60) == -signal.SIGKILL
        for proc in writers:
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in [*writers, killed, torn]:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    log = EventLog(folder, limit=limit, keep=keep)
    log.emit("probe", "after", seq=0)  # lands on the torn line if nobody else wrote after it
    events = log.read()
    by_writer: dict[str, list[int]] = {}
    for event in events:
        fields = {"t", "ev", "pid", "agent", "seq"} | ({"pad"} if event["agent"] != "after" else set())
        assert set(event) == fields
        by_writer.setdefault(event["agent"], []).append(event["seq"])
    for i in range(WRITERS):
        assert sorted(by_writer[f"w{i}"]) == list(range(EACH)), f"w{i} lost or repeated events"
    assert by_writer["after"] == [0], "the event written after the torn line is recovered"
    assert "torn" not in by_writer, "the torn event is the one thing lost"
    done = sorted(by_writer.get("killed", []))
    assert done == list(range(len(done))), "a writer killed between two appends leaves whole events only"
    broken = [raw for raw in _raw_lines(log) if not _whole(raw)]
    assert len(broken) == 1, "one line holds the torn half (and the event glued after it, if any)"
    glued = parse_line(broken[0])
    if glued is None:
        # Nothing was glued on: a writer whose line went in just before the torn half
        # rotated the file right after it (its size check came after the torn write), so
        # the torn half ended its generation. Seen under load; the half is still the torn writer's.
        assert broken[0].startswith(b'{"t":'), broken[0]
        assert f'"pid":{torn.pid},'.encode() in broken[0], broken[0]  # early in the line: in any half
        assert any(Path(name).read_bytes().endswith(broken[0]) for name in log.files() if os.path.exists(name))
    else:
        assert glued["agent"] != "torn"


def _whole(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def test_the_record_stays_within_its_bound_and_keeps_the_newest(tmp_path: Path) -> None:
    limit, keep = 4096, 2
    log = EventLog(tmp_path / "events", limit=limit, keep=keep)
    for seq in range(500):
        log.emit("probe", "one", seq=seq)
    present = [name for name in log.files() if os.path.exists(name)]
    assert len(present) == keep + 1
    line = len(json.dumps({"t": time.time(), "ev": "probe", "pid": 1, "agent": "one", "seq": 499})) + 1
    assert all(os.path.getsize(name) <= limit + line for name in present)
    seqs = [event["seq"] for event in log.read()]
    assert seqs == list(range(seqs[0], 500)), "the newest events, in order, nothing missing among them"
    assert [event["seq"] for event in log.tail(5)] == [495, 496, 497, 498, 499]


def test_reading_skips_garbage_and_a_missing_folder_is_no_error(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events")
    assert log.read() == []
    assert log.tail(3) == []
    log.emit("probe", None, seq=1)
    with open(log.path, "ab") as handle:
        handle.write(b"not json\n\n[1,2]\n" + b'{"t":1.0,"ev":"pro')
    log.emit("probe", None, seq=2)
    assert [event["seq"] for event in log.read()] == [1, 2]
    assert [event["seq"] for event in log.read(since=time.time() + 60)] == []


def test_a_write_that_fails_never_fails_the_caller(tmp_path: Path) -> None:
    blocker = tmp_path / "events"
    blocker.write_text("a file where the folder should be")
    EventLog(blocker).emit("probe", None, seq=1)  # no exception


def test_a_symlinked_events_folder_is_never_written_through_and_doctor_removes_it(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = repo / ".git" / "gitxact" / "events"
    if link.exists():
        shutil.rmtree(link)
    link.symlink_to(elsewhere)
    assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0, "the work goes on; only its event is not kept"
    assert list(elsewhere.iterdir()) == []
    report = gitxact("doctor", cwd=repo)
    assert report.returncode == 1
    assert "events is a symbolic link" in report.stdout
    assert gitxact("doctor", "--fix", cwd=repo).returncode == 0
    assert not link.is_symlink()
    assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0
    assert EventLog(link).read(kinds=frozenset({"lock"}))[-1]["lock"] == "resource.tracker", "recorded again"
    assert list(elsewhere.iterdir()) == []
