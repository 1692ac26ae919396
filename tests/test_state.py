"""The atomic state store: torn writes, flipped bytes, full disks, symlinks."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest
from support.proc import assert_clean_error, gitxact

from fixtures.corrupt import DAMAGE, corrupt
from gitxact import StateError, Workspace
from gitxact.core.meta import Meta
from gitxact.state.store import StateFile
from gitxact.tracker import TrackerState

STATE_FILES = ["tracker.json", "meta.json"]


def state_dir(repo: Path) -> Path:
    return repo / ".git" / "gitxact" / "state"


def prime(repo: Path) -> None:
    """Two generations of every state file, so each has a good backup."""
    assert gitxact("init", cwd=repo).returncode == 0
    for _ in range(2):
        assert gitxact("tracker", "incr", "n", cwd=repo).returncode == 0
    meta = Workspace(repo).state_file("meta.json", Meta)
    meta.save(meta.load())


@pytest.mark.parametrize("name", STATE_FILES)
@pytest.mark.parametrize("how", DAMAGE)
def test_corrupt_file_is_restored_from_backup(repo: Path, name: str, how: str) -> None:
    prime(repo)
    corrupt(state_dir(repo) / name, how)
    proc = gitxact("status", "--json", cwd=repo)
    assert proc.returncode == 0
    verdict = {f["name"]: f for f in json.loads(proc.stdout)["state_files"]}[name]
    assert not verdict["ok"]
    assert verdict["backup_ok"]
    # A write under the owning lock restores the good generation, with a warning.
    proc = gitxact("tracker", "incr", "n", cwd=repo) if name == "tracker.json" else gitxact("init", cwd=repo)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "backup" in proc.stderr
    assert name in proc.stderr
    if name == "tracker.json":
        # Generation 2 held n=2, its backup n=1: the restored value plus this increment.
        assert proc.stdout.strip() in {"2", "3"}
    health = {f["name"]: f for f in json.loads(gitxact("status", "--json", cwd=repo).stdout)["state_files"]}
    assert health[name]["ok"]


@pytest.mark.parametrize("how", DAMAGE)
def test_corrupt_file_without_good_backup_fails_naming_it(repo: Path, how: str) -> None:
    prime(repo)
    path = state_dir(repo) / "tracker.json"
    corrupt(path, how)
    corrupt(path.with_name("tracker.json.bak"), "garbage")
    before = path.read_bytes()
    proc = gitxact("tracker", "incr", "n", cwd=repo)
    assert_clean_error(proc, 1)
    assert "tracker.json" in proc.stderr
    assert "doctor --fix" in proc.stderr
    assert path.read_bytes() == before, "a failed load must not overwrite the evidence"
    assert_clean_error(gitxact("tracker", "get", cwd=repo), 1)


def test_files_are_private_and_backups_kept(repo: Path) -> None:
    prime(repo)
    root = repo / ".git" / "gitxact"
    for folder in (root, root / "state", root / "locks"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in STATE_FILES:
        assert stat.S_IMODE((state_dir(repo) / name).stat().st_mode) == 0o600
        assert (state_dir(repo) / f"{name}.bak").exists()


def test_symlinked_state_file_is_refused(repo: Path, tmp_path: Path) -> None:
    prime(repo)
    outside = tmp_path / "outside.json"
    outside.write_text("precious")
    path = state_dir(repo) / "tracker.json"
    path.unlink()
    path.symlink_to(outside)
    proc = gitxact("tracker", "incr", "n", cwd=repo)
    assert "Traceback" not in proc.stderr
    assert outside.read_text() == "precious", "never write through a symlink"


def test_symlinked_state_folder_is_refused(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / ".git" / "gitxact").symlink_to(elsewhere)
    proc = gitxact("tracker", "incr", "n", cwd=repo)
    assert_clean_error(proc, 1)
    assert "symbolic link" in proc.stderr
    assert list(elsewhere.iterdir()) == []


def test_disk_full_during_write_keeps_old_state(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prime(repo)
    file = StateFile(state_dir(repo) / "tracker.json", TrackerState)
    before = (state_dir(repo) / "tracker.json").read_bytes()
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if len(data) > 50:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    value = file.load()
    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(StateError, match="No space left"):
        file.save(value)
    monkeypatch.undo()
    assert (state_dir(repo) / "tracker.json").read_bytes() == before
    assert not [p for p in state_dir(repo).iterdir() if ".tmp-" in p.name], "temp file cleaned up"


def test_crash_between_temp_and_rename_keeps_old_state(repo: Path) -> None:
    prime(repo)
    before = (state_dir(repo) / "tracker.json").read_bytes()
    proc = gitxact("tracker", "incr", "n", cwd=repo, env={"GITXACT_TEST_CRASHPOINT": "state-before-rename"})
    assert proc.returncode == -9
    assert (state_dir(repo) / "tracker.json").read_bytes() == before
    assert gitxact("tracker", "get", "n", cwd=repo).stdout.strip() == "2"
    assert gitxact("tracker", "incr", "n", cwd=repo).stdout.strip() == "3"


@pytest.mark.parametrize("how", DAMAGE)
def test_file_damaged_between_load_and_save_never_becomes_the_backup(repo: Path, how: str) -> None:
    """A save reuses what its own load verified only while the file is that very file: one
    damaged in between (in place, same size for ``flip``) is verified again and kept out."""
    prime(repo)
    path = state_dir(repo) / "tracker.json"
    backup = path.with_name("tracker.json.bak")
    good_backup = backup.read_bytes()
    file = StateFile(path, TrackerState)
    value, generation = file.load_with_generation()
    corrupt(path, how)
    file.save(value)
    assert backup.read_bytes() == good_backup, "the damaged file did not displace the good backup"
    assert StateFile(path, TrackerState).load_with_generation()[1] == generation  # the backup's + 1


def test_save_after_load_keeps_the_loaded_generation_as_backup(repo: Path) -> None:
    prime(repo)
    path = state_dir(repo) / "tracker.json"
    file = StateFile(path, TrackerState)
    value, generation = file.load_with_generation()
    loaded = path.read_bytes()
    file.save(value)
    assert path.with_name("tracker.json.bak").read_bytes() == loaded
    assert StateFile(path, TrackerState).load_with_generation()[1] == generation + 1
