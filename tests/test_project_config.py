"""``.gitxact.toml`` (issue 27): a lease's setup and teardown, trusted before they run.

Everything through real git and real `gitxact` processes: the committed file is read
from the commit the lease checks out, its commands run only once `gitxact trust` has
recorded that exact content, setup sees the lease's variables, a failing setup leaves
nothing behind, and a teardown runs at release without ever blocking the save of work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, kill_group, wait_for_file

from fixtures.repos import make_repo

SETUP_RECORD = 'env | grep ^GITXACT_ | grep -v ^GITXACT_LOCKS | sort > "$OUT/$GITXACT_AGENT.env"'


def commit_config(repo: Path, text: str, message: str = "provisioning") -> None:
    (repo / ".gitxact.toml").write_text(text)
    git("add", ".gitxact.toml", cwd=repo)
    git("commit", "-q", "-m", message, cwd=repo)


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder outside every worktree where the test's commands write what they saw."""
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setenv("OUT", str(folder))
    return folder


@pytest.fixture
def project(tmp_path: Path, out: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    assert gitxact("init", cwd=repo).returncode == 0
    (repo / ".gitignore").write_text("made-by-setup.txt\n")  # a setup's output, as a project ignores it
    git("add", ".gitignore", cwd=repo)
    commit_config(
        repo,
        f"""
[lease]
setup = [{json.dumps(SETUP_RECORD)}, "echo set up > made-by-setup.txt"]
teardown = ['echo "$GITXACT_AGENT $(cat made-by-setup.txt)" >> "$OUT/teardown.txt"']
ports = 2
port-range = "23100-23199"
""",
    )
    return repo


def acquire(repo: Path, agent: str, owner: int, *args: str) -> subprocess.CompletedProcess[str]:
    return gitxact("worktree", "acquire", agent, "--owner-pid", str(owner), "--json", *args, cwd=repo)


def leases_of(repo: Path) -> list[str]:
    listing = gitxact("worktree", "list", "--json", cwd=repo)
    assert listing.returncode == 0, listing.stderr
    return [lease["agent"] for lease in json.loads(listing.stdout)["leases"]]


def assert_nothing_left(repo: Path, agent: str) -> None:
    assert leases_of(repo) == []
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1, "only the main worktree"
    assert not (repo.parent / "repo.worktrees" / agent).exists()
    assert git("branch", "--list", f"gitxact/{agent}", cwd=repo) == ""
    assert git("for-each-ref", "refs/gitxact/snapshots/", cwd=repo) == ""
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


# -- trust -------------------------------------------------------------------------------


def test_an_untrusted_file_refuses_the_acquire_and_makes_nothing(project: Path, out: Path, owner: int) -> None:
    refused = acquire(project, "a1", owner)
    assert_clean_error(refused, 3)
    assert "gitxact trust" in refused.stderr
    assert "echo set up > made-by-setup.txt" in refused.stderr  # the commands are named
    assert list(out.iterdir()) == []  # nothing ran
    assert_nothing_left(project, "a1")


def test_trust_shows_the_commands_then_the_acquire_runs_them(project: Path, out: Path, owner: int) -> None:
    shown = gitxact("trust", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert "setup     echo set up > made-by-setup.txt" in shown.stdout
    assert "teardown  echo" in shown.stdout
    again = gitxact("trust", "--json", cwd=project)
    assert json.loads(again.stdout)["action"] == "unchanged"
    made = acquire(project, "a1", owner)
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert (Path(doc["path"]) / "made-by-setup.txt").read_text() == "set up\n"
    assert Path(doc["setup_log"]).read_text().count("# exit 0") == 2


def test_a_changed_file_needs_trusting_again_and_revoke_takes_it_back(project: Path, out: Path, owner: int) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    first = json.loads(gitxact("trust", "--json", cwd=project).stdout)["sha256"]
    text = (project / ".gitxact.toml").read_text().replace("echo set up", "echo changed")
    commit_config(project, text, "change setup")
    changed = acquire(project, "a1", owner)
    assert_clean_error(changed, 3)
    assert "echo changed" in changed.stderr
    assert list(out.iterdir()) == []
    trusted = json.loads(gitxact("trust", "--json", cwd=project).stdout)
    assert trusted["action"] == "trusted"
    assert trusted["sha256"] != first
    revoked = json.loads(gitxact("trust", "--revoke", "--json", cwd=project).stdout)
    assert revoked == {**revoked, "action": "revoked", "trusted": False}
    assert_clean_error(acquire(project, "a1", owner), 3)
    assert_nothing_left(project, "a1")


def test_the_file_counts_as_committed_in_the_leases_commit_not_as_edited_in_main(
    project: Path, out: Path, owner: int
) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    # An edit in the main worktree, not committed, never runs (and needs no trust).
    (project / ".gitxact.toml").write_text('[lease]\nsetup = ["touch $OUT/edited-ran"]\n')
    made = acquire(project, "a1", owner)
    assert made.returncode == 0, made.stderr
    assert not (out / "edited-ran").exists()
    assert (out / "a1.env").is_file()
    shown = gitxact("trust", cwd=project)
    assert "touch" not in shown.stdout  # it shows (and would trust) the committed file
    assert "the main worktree's .gitxact.toml differs" in shown.stdout


def test_a_file_with_only_ports_needs_no_trust(tmp_path: Path, owner: int) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_config(repo, '[lease]\nports = 1\nport-range = "23200-23299"\n')
    made = acquire(repo, "a1", owner)
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    assert len(doc["ports"]) == 1
    assert doc["setup_log"] is None
    assert json.loads(gitxact("trust", "--json", cwd=repo).stdout)["action"] == "not-needed"


# -- setup -------------------------------------------------------------------------------


def test_setup_sees_the_leases_variables_and_worktree_env_prints_them(project: Path, out: Path, owner: int) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    made = acquire(project, "agent-7", owner)
    assert made.returncode == 0, made.stderr
    doc = json.loads(made.stdout)
    ports = doc["ports"]
    assert len(ports) == 2
    assert all(23100 <= p <= 23199 for p in ports)
    assert ports[0] != ports[1]
    expected = {
        "GITXACT_AGENT": "agent-7",
        "GITXACT_BRANCH": "gitxact/agent-7",
        "GITXACT_WORKTREE": doc["path"],
        "GITXACT_PORT": str(ports[0]),
        "GITXACT_PORTS": f"{ports[0]},{ports[1]}",
    }
    seen = dict(line.split("=", 1) for line in (out / "agent-7.env").read_text().splitlines())
    assert seen == expected
    assert doc["env"] == expected
    printed = gitxact("worktree", "env", "agent-7", cwd=project)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == "".join(f"export {k}={v}\n" for k, v in expected.items())
    # The lines are meant for a shell's eval: a POSIX shell reads back exactly the values.
    shell = subprocess.run(
        ["sh", "-c", 'eval "$1"; printf "%s|" "$GITXACT_AGENT" "$GITXACT_PORTS"', "sh", printed.stdout],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == f"agent-7|{ports[0]},{ports[1]}|"
    human = gitxact("worktree", "acquire", "agent-8", "--owner-pid", str(owner), cwd=project)
    assert "setup   done, log " in human.stdout
    assert "ports   " in human.stdout
    assert_clean_error(gitxact("worktree", "env", "nobody", cwd=project), 1)


def test_a_failing_setup_leaves_nothing_behind(project: Path, out: Path, owner: int) -> None:
    commit_config(
        project,
        '[lease]\nsetup = ["echo first > first.txt", "echo doomed; exit 7", "touch $OUT/never"]\nports = 3\n',
    )
    assert gitxact("trust", cwd=project).returncode == 0
    failed = acquire(project, "a1", owner)
    assert_clean_error(failed, 1)
    assert "failed with exit 7: doomed (log " in failed.stderr  # what it said, without opening the log
    assert "echo doomed; exit 7" in failed.stderr
    log = next((project / ".git" / "gitxact" / "logs").glob("setup-a1-*.log"))
    assert str(log) in failed.stderr  # the log is named
    assert "doomed" in log.read_text()
    assert not (out / "never").exists()  # the commands after the failing one do not run
    assert_nothing_left(project, "a1")
    # Its ports went with it: the next lease gets the same lowest ones.
    commit_config(project, '[lease]\nports = 3\nport-range = "23300-23399"\n')
    again = acquire(project, "a1", owner)
    assert again.returncode == 0, again.stderr


def test_keep_failed_keeps_the_lease_to_look_into(project: Path, out: Path, owner: int) -> None:
    commit_config(project, '[lease]\nsetup = ["echo half > half.txt; exit 4"]\n')
    assert gitxact("trust", cwd=project).returncode == 0
    kept = acquire(project, "a1", owner, "--keep-failed")
    assert kept.returncode == 1
    doc = json.loads(kept.stdout)
    assert "exit 4" in doc["setup_failed"]
    assert doc["token"]
    assert (Path(doc["path"]) / "half.txt").read_text() == "half\n"
    assert leases_of(project) == ["a1"]
    released = gitxact("worktree", "release", "a1", "--token", doc["token"], "--force", cwd=project)
    assert released.returncode == 0, released.stderr


# -- teardown ----------------------------------------------------------------------------


def test_teardown_runs_at_release_before_the_files_go(project: Path, out: Path, owner: int) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    doc = json.loads(acquire(project, "a1", owner).stdout)
    released = gitxact("worktree", "release", "a1", "--token", doc["token"], "--json", cwd=project)
    assert released.returncode == 0, released.stderr
    # What setup made was still there when the teardown ran.
    assert (out / "teardown.txt").read_text() == "a1 set up\n"
    result = json.loads(released.stdout)
    assert result["teardown_error"] is None
    assert Path(result["teardown_log"]).is_file()
    assert not Path(doc["path"]).exists()


def test_a_failing_teardown_never_blocks_saving_the_work(project: Path, out: Path, owner: int) -> None:
    commit_config(project, '[lease]\nteardown = ["echo tearing; exit 9"]\n')
    assert gitxact("trust", cwd=project).returncode == 0
    doc = json.loads(acquire(project, "a1", owner).stdout)
    (Path(doc["path"]) / "work.txt").write_text("precious\n")
    released = gitxact("worktree", "release", "a1", "--force", "--json", cwd=project)
    assert released.returncode == 0, released.stderr
    result = json.loads(released.stdout)
    assert "exit 9" in result["teardown_error"]
    assert "exit 9" in released.stderr  # reported to the person too
    snapshot = result["snapshot_ref"]
    assert git("show", f"{snapshot}:work.txt", cwd=project) == "precious\n"
    assert leases_of(project) == []


def test_a_dirty_worktree_refuses_the_release_before_any_teardown(project: Path, out: Path, owner: int) -> None:
    commit_config(project, '[lease]\nteardown = ["touch $OUT/torn-down"]\n')
    assert gitxact("trust", cwd=project).returncode == 0
    doc = json.loads(acquire(project, "a1", owner).stdout)
    (Path(doc["path"]) / "work.txt").write_text("unsaved\n")
    assert_clean_error(gitxact("worktree", "release", "a1", "--token", doc["token"], cwd=project), 3)
    assert not (out / "torn-down").exists()
    assert leases_of(project) == ["a1"]


def test_teardown_of_a_revoked_file_does_not_run(project: Path, out: Path, owner: int) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    doc = json.loads(acquire(project, "a1", owner).stdout)
    assert gitxact("trust", "--revoke", cwd=project).returncode == 0
    released = gitxact("worktree", "release", "a1", "--force", "--json", cwd=project)
    assert released.returncode == 0, released.stderr
    assert "no longer trusted" in json.loads(released.stdout)["teardown_error"]
    assert not (out / "teardown.txt").exists()
    assert not Path(doc["path"]).exists()


# -- the file's own rules ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[lease]\nsetpu = ['make']\n", "unknown key 'lease.setpu'"),
        ("[lease]\nports = '2'\n", "lease.ports"),
        ("[lease]\nports = true\n", "lease.ports"),
        ("[lease]\nsetup = 'make'\n", "lease.setup must be a list"),
        ("[lease]\nport-range = '30000-20000'\n", "lease.port-range"),
        ("[lease]\nsparse = ['../outside']\n", "lease.sparse"),
        ("[other]\nx = 1\n", "unknown table or key 'other'"),
        ("[lease\n", "is not valid TOML"),
    ],
)
def test_a_wrong_key_or_type_is_a_usage_error_naming_the_file_and_key(
    tmp_path: Path, owner: int, text: str, named: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_config(repo, text)
    refused = acquire(repo, "a1", owner)
    assert_clean_error(refused, 2)
    assert ".gitxact.toml" in refused.stderr
    assert named in refused.stderr
    assert leases_of(repo) == []


def test_the_clones_git_config_wins_over_the_file(tmp_path: Path, owner: int) -> None:
    repo = make_repo(tmp_path / "repo")
    commit_config(repo, '[lease]\nports = 1\nport-range = "23400-23499"\n')
    git("config", "gitxact.leasePorts", "3", cwd=repo)
    git("config", "gitxact.leasePortRange", "23500-23599", cwd=repo)
    doc = json.loads(acquire(repo, "a1", owner).stdout)
    assert len(doc["ports"]) == 3
    assert all(23500 <= p <= 23599 for p in doc["ports"])
    git("config", "gitxact.leasePorts", "many", cwd=repo)
    refused = acquire(repo, "a2", owner)
    assert_clean_error(refused, 2)
    assert "gitxact.leasePorts" in refused.stderr


def test_include_names_more_ignored_files_to_copy(tmp_path: Path, owner: int) -> None:
    repo = make_repo(tmp_path / "repo")
    (repo / ".gitignore").write_text("*.local\n")
    git("add", ".gitignore", cwd=repo)
    commit_config(repo, '[lease]\ninclude = ["settings.local"]\n')
    (repo / "settings.local").write_text("secret=1\n")
    (repo / "other.local").write_text("not named\n")
    doc = json.loads(acquire(repo, "a1", owner).stdout)
    assert doc["included"] == ["settings.local"]
    assert (Path(doc["path"]) / "settings.local").read_text() == "secret=1\n"
    assert not (Path(doc["path"]) / "other.local").exists()


# -- interrupted setups --------------------------------------------------------------------


def _slow_setup(project: Path) -> None:
    commit_config(project, '[lease]\nsetup = ["echo $$ > $OUT/setup.pid; sleep 120"]\nports = 1\n')
    assert gitxact("trust", cwd=project).returncode == 0


def _start_acquire(project: Path, owner: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GITXACT, "worktree", "acquire", "a1", "--owner-pid", str(owner)],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_a_setup_interrupted_by_ctrl_c_is_stopped_and_undone(project: Path, out: Path, owner: int) -> None:
    _slow_setup(project)
    proc = _start_acquire(project, owner)
    try:
        wait_for_file(out / "setup.pid", "the setup to start", proc)
        setup_pid = int((out / "setup.pid").read_text())
        os.kill(proc.pid, signal.SIGINT)  # to gitxact alone, as a terminal's Ctrl-C reaches it
        proc.wait(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode != 0
    with pytest.raises(ProcessLookupError):  # the setup was killed, not left running in a removed folder
        os.kill(setup_pid, 0)
    assert_nothing_left(project, "a1")


def test_an_acquire_killed_during_its_setup_is_undone_by_recover(project: Path, out: Path, owner: int) -> None:
    _slow_setup(project)
    proc = _start_acquire(project, owner)
    try:
        wait_for_file(out / "setup.pid", "the setup to start", proc)
        assert leases_of(project) == ["a1"]  # provisioning: listed, and reap leaves it alone meanwhile
        kept = json.loads(gitxact("worktree", "reap", "--json", cwd=project).stdout)
        assert kept["ended"] == []
        assert "provisioning" in kept["kept"]["a1"]
    finally:
        kill_group(proc)  # SIGKILL: gitxact and its setup at once
    recovered = gitxact("recover", cwd=project)
    assert recovered.returncode == 0, recovered.stderr
    assert_nothing_left(project, "a1")


def test_a_broken_file_on_main_does_not_refuse_returning_an_existing_lease(tmp_path: Path, owner: int) -> None:
    repo = make_repo(tmp_path / "repo")
    first = acquire(repo, "a1", owner)
    assert first.returncode == 0, first.stderr
    commit_config(repo, "[lease]\nbogus = 1\n")
    again = acquire(repo, "a1", owner)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["existing"] is True
    assert_clean_error(acquire(repo, "a2", owner), 2)  # a new lease does need it


def test_a_resumed_branch_is_provisioned_by_the_file_in_its_own_tip(project: Path, out: Path, owner: int) -> None:
    assert gitxact("trust", cwd=project).returncode == 0
    doc = json.loads(acquire(project, "a1", owner).stdout)
    worktree = Path(doc["path"])
    # The agent commits a changed setup on its branch, then its lease ends (branch kept).
    (worktree / ".gitxact.toml").write_text('[lease]\nsetup = ["touch $OUT/from-the-branch"]\n')
    git("commit", "-q", "-am", "my own setup", cwd=worktree)
    assert gitxact("worktree", "release", "a1", "--token", doc["token"], cwd=project).returncode == 0
    refused = acquire(project, "a1", owner, "--resume")
    assert_clean_error(refused, 3)
    assert "touch $OUT/from-the-branch" in refused.stderr
    assert "gitxact trust --base gitxact/a1" in refused.stderr  # the file is the branch's
    assert not (out / "from-the-branch").exists()
