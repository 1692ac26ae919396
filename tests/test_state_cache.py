"""The state store's verified-bytes cache: a load of bytes this process verified (or wrote)
skips the parse and the checksum, and nothing else changes.

Whatever another process writes, and whatever a forger does to the file's identity (same
size, the same modification time set back, a rename's new inode or an edit in place), a load
sees the file's bytes as they are now: the cache only remembers bytes, never trusts a stat.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitxact import Workspace
from gitxact.leases import reader as lease_reader
from gitxact.leases.records import Lease, LeaseState, leases_file
from gitxact.state import checksums, envelope
from gitxact.state.checksums import canonical_json, checksum_of, sealed
from gitxact.util import jsontext


def _lease(agent: str, ports: list[int] | None = None) -> Lease:
    now = time.time()
    return Lease(
        agent=agent,
        path=f"/nowhere/{agent}",
        branch=f"gitxact/{agent}",
        base="main",
        token_hash="0" * 64,
        owner_pid=os.getpid(),
        owner_host="here",
        created=now,
        heartbeat=now,
        ttl=3600,
        ports=[] if ports is None else ports,
    )


def _saved(repo: Path, *agents: str) -> Path:
    """leases.json with *agents*' records (two generations, so it has a backup)."""
    ws = Workspace(repo)
    ws.init()
    file = leases_file(ws)
    with ws.locks.resource("leases"):
        file.save(LeaseState(leases={}))
        file.save(LeaseState(leases={agent: _lease(agent, [20000 + i]) for i, agent in enumerate(agents)}))
    return file.path


#: Another process's write through gitxact's store: one more record, *agent*.
_WRITER = """
import sys, time
from gitxact import Workspace
from gitxact.leases.records import Lease, leases_file
ws = Workspace(sys.argv[1])
file = leases_file(ws)
with ws.locks.resource("leases"):
    state = file.load()
    now = time.time()
    state.leases[sys.argv[2]] = Lease(agent=sys.argv[2], path="/x", branch="b", base="main", token_hash="1" * 64,
                                      owner_pid=1, owner_host="there", created=now, heartbeat=now, ttl=60)
    file.save(state)
"""


def test_a_write_by_another_process_is_seen_by_the_next_load(repo: Path) -> None:
    path = _saved(repo, "a1", "a2")
    file = leases_file(Workspace(repo))
    assert sorted(file.load().leases) == ["a1", "a2"]  # verified, so remembered
    for agent in ("b1", "b2"):  # twice: the second write may reuse the first one's inode number
        subprocess.run([sys.executable, "-c", _WRITER, str(repo), agent], check=True)
    state, generation = file.load_with_generation()
    assert sorted(state.leases) == ["a1", "a2", "b1", "b2"]
    assert state.leases["b2"].owner_host == "there"
    assert generation == envelope.open_envelope(path.read_bytes(), "leases")["generation"]


@pytest.mark.parametrize("how", ["renamed", "in place"])
def test_a_same_sized_forgery_with_its_old_times_is_caught(
    repo: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _saved(repo, "a1")
    file = leases_file(Workspace(repo))
    assert file.load().leases["a1"].ports == [20000]
    before = os.stat(path)
    raw = path.read_bytes()
    forged = raw.replace(b"[20000]", b"[20001]")  # the same size, the checksum left as it was
    assert len(forged) == len(raw)
    assert forged != raw
    if how == "renamed":  # a new inode, as an editor or another tool writes a file
        tmp = path.with_name("forged.tmp")
        tmp.write_bytes(forged)
        os.utime(tmp, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(tmp, path)
    else:  # the same inode, its modification time set back: only its ctime moved (if the clock ticked)
        with path.open("r+b") as handle:
            handle.write(forged)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    state = file.load()
    assert state.leases == {}, "the backup's generation (before a1's record) was used"
    assert "checksum mismatch" in capsys.readouterr().err


def test_a_value_handed_out_can_be_changed_without_changing_the_next_load(repo: Path) -> None:
    _saved(repo, "a1")
    file = leases_file(Workspace(repo))
    first = file.load()
    first.leases["a1"].ports.append(1)
    first.leases["a1"].phase = "removing"
    first.leases["new"] = _lease("new")
    second = file.load()
    assert sorted(second.leases) == ["a1"]
    assert second.leases["a1"].ports == [20000]
    assert second.leases["a1"].phase == "active"
    assert second.leases["a1"] is not first.leases["a1"]


def test_what_this_process_wrote_loads_as_written_and_verifies_everywhere(repo: Path) -> None:
    path = _saved(repo, "a1")
    ws = Workspace(repo)
    file = leases_file(ws)
    value = LeaseState(leases={"w": _lease("w", [1, 2])})
    with ws.locks.resource("leases"):
        file.save(value)
    value.leases["w"].ports.append(3)  # the caller's object changes after the write: the file did not
    assert file.load().leases["w"].ports == [1, 2]
    # The lean reader (hooks, gx) and a fresh process agree with this process's load.
    assert lease_reader.SCHEMA == LeaseState.SCHEMA
    data = envelope.load(str(path), "leases", LeaseState.SCHEMA)
    assert data is not None
    assert data["leases"]["w"]["ports"] == [1, 2]
    code = "import sys; from gitxact import Workspace; from gitxact.leases.records import leases_file; "
    code += "print(leases_file(Workspace(sys.argv[1])).load().leases['w'].ports)"
    out = subprocess.run([sys.executable, "-c", code, str(repo)], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[1, 2]"


def test_the_sealed_text_is_the_canonical_envelope_hashed_once() -> None:
    body = {
        "format": "gitxact-state",
        "kind": "leases",
        "schema": 1,
        "generation": 3,
        "written_at": 1.5,
        "data": {"leases": {"z": {"agent": "z", "ports": [1]}, "a": {"agent": "ä"}}},
    }
    text = sealed(body)
    envelope_ = jsontext.loads(text)
    assert envelope_["checksum"] == checksum_of(envelope_)
    assert text == canonical_json(envelope_)
    with pytest.raises(ValueError, match="sort after"):
        sealed({"a": 1})


def test_an_acquire_at_many_leases_verifies_and_serialises_leases_json_once_each(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the bench's figure at 1,000 leases rests on, counted rather than timed: in a process
    that has read leases.json before, one acquire parses and checksums it at most once (it reads
    it three times) and serialises each of its two writes once."""
    ws = Workspace(repo)
    ws.init()
    for i in range(3):
        ws.worktrees.acquire(f"held-{i}")
    opened: list[str] = []
    serialised: list[int] = []
    real_open, real_canonical = envelope.open_envelope, checksums.canonical_json

    def counting_open(raw: bytes, kind: str) -> dict[str, object]:
        opened.append(kind)
        return real_open(raw, kind)

    def counting_canonical(value: object) -> bytes:
        text = real_canonical(value)
        if isinstance(value, dict) and value.get("kind") == "leases":
            serialised.append(len(text))
        return text

    monkeypatch.setattr(envelope, "open_envelope", counting_open)
    monkeypatch.setattr(checksums, "canonical_json", counting_canonical)
    doc = ws.worktrees.acquire("probe")
    assert opened.count("leases") <= 1, opened
    assert len(serialised) == 2, "two writes (the record, then active), each serialised once"
    ws.worktrees.release("probe", token=doc.token)


def test_a_tracker_value_changed_in_hand_is_not_saved_by_a_later_write(repo: Path) -> None:
    """A JSON value handed out by a load is the caller's own copy: changing it in hand does
    not change what the next load (served from the verified bytes) gives, nor what an
    unrelated write saves."""
    ws = Workspace(repo)
    ws.tracker.set("cfg", {"allowed": ["alice"]})
    ws.tracker.get("cfg")["cfg"].value["allowed"].append("mallory")
    ws.tracker.set("other", 1)
    assert ws.tracker.get("cfg")["cfg"].value == {"allowed": ["alice"]}
    code = "import sys; from gitxact import Workspace; print(Workspace(sys.argv[1]).tracker.get('cfg')['cfg'].value)"
    fresh = subprocess.run([sys.executable, "-c", code, str(repo)], check=True, capture_output=True, text=True)
    assert fresh.stdout.strip() == "{'allowed': ['alice']}"
