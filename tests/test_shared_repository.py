"""Issue 25, part 5: a repository made with `git init --shared=group` works for its whole group.

Two OS users of one group, and one outside it, made by the test (root only; skipped
otherwise) and removed after. User A makes the repository and leases a worktree; user B
(same group) then commits through `gx`, leases, counts, locks and asks for the status;
someone outside the group gets a clear exit 1, never an internal error. Every command runs
as that user (`runuser`), with a HOME of its own and the system's Python of this
interpreter's version over this checkout and its venv's packages (nothing is copied).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.proc import ROOT

from gitxact.util.files import dir_mode_under, file_mode_in

GX_MAIN = "import sys; from gitxact.gx.main import main; sys.exit(main())"
SYSTEM_PYTHON = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
SITE = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
PREFIX = f"gx{os.getpid() % 100000}"


def test_the_modes_follow_the_folder_they_are_made_in() -> None:
    """git's sharing read from the git directory: private unless setgid and group-writable."""
    assert (dir_mode_under(0o40755), file_mode_in(0o40755)) == (0o700, 0o600), "umask 022, not shared"
    assert (dir_mode_under(0o40775), file_mode_in(0o40775)) == (0o700, 0o600), "umask 002 alone shares nothing"
    assert (dir_mode_under(0o42775), file_mode_in(0o42775)) == (0o2775, 0o664), "--shared=group / all"
    assert (dir_mode_under(0o42770), file_mode_in(0o42770)) == (0o2770, 0o660), "--shared=0660"
    assert (dir_mode_under(0o42750), file_mode_in(0o42750)) == (0o700, 0o600), "--shared=0640: read-only group"


@dataclass
class User:
    name: str
    home: Path

    def env(self) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.home),
            "GIT_CONFIG_GLOBAL": str(self.home / ".gitconfig"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "PYTHONPATH": f"{ROOT}{os.pathsep}{SITE}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "NO_COLOR": "1",
            "LANG": "C.UTF-8",
        }

    def argv(self, argv: list[str]) -> list[str]:
        # `env -i`: nothing of root's environment (the test's GIT_*, its HOME) reaches the user.
        return ["runuser", "-u", self.name, "--", "env", "-i", *[f"{k}={v}" for k, v in self.env().items()], *argv]

    def run(self, argv: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def gitxact(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run([str(SYSTEM_PYTHON), "-m", "gitxact", *args], cwd)

    def gx(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run([str(SYSTEM_PYTHON), "-c", GX_MAIN, *args], cwd)

    def git(self, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        return self.run(["git", *args], cwd)


def _tool(name: str) -> bool:
    return shutil.which(name) is not None


@dataclass
class Team:
    a: User
    b: User
    outsider: User
    group: str
    place: Path


@pytest.fixture
def team() -> Iterator[Team]:
    if os.geteuid() != 0:
        pytest.skip("needs root to make the OS users (useradd/groupadd)")
    if not all(_tool(t) for t in ("useradd", "groupadd", "userdel", "groupdel", "runuser")):
        pytest.skip("useradd, groupadd or runuser is missing")
    if not SYSTEM_PYTHON.exists():
        pytest.skip(f"{SYSTEM_PYTHON} (this interpreter's version, runnable by other users) is missing")
    group = f"{PREFIX}team"
    names = [f"{PREFIX}a", f"{PREFIX}b", f"{PREFIX}x"]
    made: list[str] = []
    place = Path(tempfile.mkdtemp(prefix="gitxact-shared-"))
    try:
        subprocess.run(["groupadd", group], check=True, capture_output=True)
        for name, groups in zip(names, ([group], [group], []), strict=True):
            extra = ["-G", ",".join(groups)] if groups else []
            subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", *extra, name], check=True, capture_output=True)
            made.append(name)
        os.chmod(place, 0o755)
        users = []
        for name in names:
            home = place / f"home-{name}"
            home.mkdir(mode=0o700)
            (home / ".gitconfig").write_text(
                f"[user]\n\tname = {name}\n\temail = {name}@example.com\n[init]\n\tdefaultBranch = main\n"
                "[safe]\n\tdirectory = *\n"  # git refuses a repository another user owns without it
            )
            entry = pwd.getpwnam(name)
            for path in (home, home / ".gitconfig"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            users.append(User(name, home))
        projects = place / "projects"
        projects.mkdir()
        os.chown(projects, pwd.getpwnam(names[0]).pw_uid, grp.getgrnam(group).gr_gid)
        os.chmod(projects, 0o2775)
        probe = users[1].run([str(SYSTEM_PYTHON), "-c", "import gitxact, pydantic, click"], place)
        if probe.returncode != 0:
            pytest.skip(f"another user cannot run this checkout's Python packages: {probe.stderr.strip()[-200:]}")
        yield Team(users[0], users[1], users[2], group, projects)
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False, capture_output=True)
        subprocess.run(["groupdel", group], check=False, capture_output=True)
        shutil.rmtree(place, ignore_errors=True)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "internal error" not in proc.stderr
    return proc.stdout


def clean_exit_1(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "internal error" not in proc.stderr
    assert "Traceback" not in proc.stderr


def shared_repo(team: Team) -> Path:
    repo = team.place / "repo"
    ok(team.a.git("init", "-q", "--shared=group", str(repo), cwd=team.place))
    (team.place / "README").write_text("hello\n")
    ok(team.a.run(["cp", str(team.place / "README"), str(repo / "README")], team.place))
    ok(team.a.git("add", "README", cwd=repo))
    ok(team.a.git("commit", "-q", "-m", "initial", cwd=repo))
    return repo


def test_a_second_member_of_the_group_uses_everything_gitxact_made(team: Team) -> None:
    repo = shared_repo(team)
    a, b = team.a, team.b
    ok(a.gitxact("init", cwd=repo))
    leased = json.loads(ok(a.gitxact("worktree", "acquire", "agent-a", "--owner-pid", "1", "--json", cwd=repo)))
    ok(a.gitxact("tracker", "incr", "done", cwd=repo))
    ok(a.gitxact("lock", "--", "true", cwd=repo))

    # Each member commits in a worktree of their own: git itself writes the main worktree's
    # COMMIT_EDITMSG 0644 even in a shared repository (it is not adjusted), so a second
    # committer there fails in git, whatever gitxact does.
    other = json.loads(ok(b.gitxact("worktree", "acquire", "agent-b", "--owner-pid", "1", "--json", cwd=repo)))
    assert other["path"] != leased["path"]
    ok(b.gx("commit", "-q", "--allow-empty", "-m", "b was here", cwd=Path(other["path"])))
    ok(b.gx("status", "--short", cwd=Path(other["path"])))
    assert ok(b.gitxact("tracker", "incr", "done", cwd=repo)).strip() == "2"
    ok(b.gitxact("lock", "--", "true", cwd=repo))
    status = json.loads(ok(b.gitxact("status", "--json", cwd=repo)))
    assert sorted(lease["agent"] for lease in status["leases"]) == ["agent-a", "agent-b"]
    assert ok(a.gitxact("tracker", "incr", "done", cwd=repo)).strip() == "3", "and A still uses what B made"
    ok(a.gx("commit", "-q", "--allow-empty", "-m", "a again", cwd=Path(leased["path"])))
    ok(a.gx("commit", "-q", "--allow-empty", "-m", "a in main", cwd=repo))
    assert ok(a.git("log", "--format=%an", "gitxact/agent-b", cwd=repo)).split() == [b.name, a.name]
    assert ok(a.git("log", "--format=%an", "gitxact/agent-a", cwd=repo)).split() == [a.name, a.name]
    ok(a.git("fsck", "--strict", cwd=repo))

    # Whoever made them, everything gitxact made is the group's: folders 2775, files 0664.
    state = repo / ".git" / "gitxact"
    assert {p.name for p in state.iterdir()} >= {"locks", "state", "events"}
    gid = grp.getgrnam(team.group).gr_gid
    for top, dirs, files in os.walk(state):
        for name in dirs:
            info = os.lstat(os.path.join(top, name))
            assert info.st_gid == gid, f"{top}/{name}: the group is kept"
            assert stat.S_IMODE(info.st_mode) == 0o2775, f"{top}/{name}: {stat.S_IMODE(info.st_mode):o}"
        for name in files:
            info = os.lstat(os.path.join(top, name))
            assert info.st_gid == gid, f"{top}/{name}: the group is kept"
            assert stat.S_IMODE(info.st_mode) == 0o664, f"{top}/{name}: {stat.S_IMODE(info.st_mode):o}"

    root = repo.parent / "repo.worktrees"
    assert stat.S_IMODE(root.stat().st_mode) == 0o2775, "the worktree root is the group's too"


def test_someone_outside_the_group_gets_a_clear_exit_1(team: Team) -> None:
    """`--shared=group` leaves the repository world-readable, as git does: an outsider may
    read the status, but whatever would write is refused with exit 1, said clearly."""
    repo = shared_repo(team)
    ok(team.a.gitxact("init", cwd=repo))
    ok(team.a.gitxact("tracker", "incr", "done", cwd=repo))
    for argv in (["tracker", "incr", "done"], ["lock", "--", "true"], ["worktree", "acquire", "x"]):
        proc = team.outsider.gitxact(*argv, cwd=repo)
        clean_exit_1(proc)
        assert str(repo / ".git" / "gitxact") in proc.stderr, proc.stderr
        assert "core.sharedRepository" in proc.stderr
        assert f"{team.outsider.name} is not in it" in proc.stderr
    ok(team.outsider.gitxact("status", cwd=repo))
    proc = team.outsider.gx("commit", "-q", "--allow-empty", "-m", "not mine", cwd=repo)
    clean_exit_1(proc)
    assert "core.sharedRepository" in proc.stderr
    assert ok(team.a.gitxact("tracker", "get", "done", cwd=repo)).strip() == "1"


def test_a_state_folder_made_private_before_is_shared_again_by_its_owners_init(team: Team) -> None:
    """What an older gitxact left (folders 2700, files 0600): a clear error, then `gitxact init` by its owner."""
    repo = shared_repo(team)
    ok(team.a.gitxact("init", cwd=repo))
    ok(team.a.gitxact("tracker", "incr", "done", cwd=repo))
    state = repo / ".git" / "gitxact"
    ok(team.a.run(["chmod", "-R", "go-rwx", str(state)], repo))

    proc = team.b.gitxact("tracker", "incr", "done", cwd=repo)
    clean_exit_1(proc)
    assert str(state) in proc.stderr
    assert "`gitxact init` run by" in proc.stderr, proc.stderr

    ok(team.a.gitxact("init", cwd=repo))
    assert ok(team.b.gitxact("tracker", "incr", "done", cwd=repo)).strip() == "2"
    ok(team.b.gitxact("status", cwd=repo))

    # A worktree root an older gitxact made (0755): said as clearly, and its owner's chmod mends it.
    root = repo.parent / "repo.worktrees"
    ok(team.a.gitxact("worktree", "acquire", "agent-a", "--owner-pid", "1", cwd=repo))
    ok(team.a.run(["chmod", "0755", str(root)], repo))
    proc = team.b.gitxact("worktree", "acquire", "agent-b", "--owner-pid", "1", cwd=repo)
    clean_exit_1(proc)
    assert f"`chmod g+ws {root}` by its owner" in proc.stderr, proc.stderr
    leases = json.loads(ok(team.b.gitxact("worktree", "list", "--json", cwd=repo)))["leases"]
    assert [lease["agent"] for lease in leases] == ["agent-a"], "nothing half-made is left"
    ok(team.a.run(["chmod", "g+ws", str(root)], repo))
    ok(team.b.gitxact("worktree", "acquire", "agent-b", "--owner-pid", "1", cwd=repo))

    # Now the group can write there: a member's link to A's private file must not make
    # A's next `gitxact init` share that file (every chmod is on what was opened no-follow).
    secret = team.a.home / "secret"
    ok(team.a.run(["sh", "-c", f"umask 077 && echo key > {secret}"], repo))
    ok(team.b.run(["ln", "-s", str(secret), str(state / "state" / "planted")], repo))
    ok(team.b.run(["ln", "-s", str(team.a.home), str(state / "planted-folder")], repo))
    ok(team.a.gitxact("init", cwd=repo))
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(team.a.home.stat().st_mode) == 0o700


def test_two_members_counting_at_once_lose_no_increment(team: Team) -> None:
    """Each waits in the other's ticket queue, on the other's lock files: exact counts."""
    repo = shared_repo(team)
    ok(team.a.gitxact("init", cwd=repo))
    rounds = 15
    loop = f'for i in $(seq {rounds}); do "{SYSTEM_PYTHON}" -m gitxact tracker incr n >/dev/null || exit 1; done'
    procs = [
        subprocess.Popen(
            user.argv(["sh", "-c", loop]), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for user in (team.a, team.b)
    ]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            assert "internal error" not in err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            for pipe in (proc.stdout, proc.stderr):  # read or not, closed: no ResourceWarning later
                if pipe is not None:
                    pipe.close()
    assert ok(team.b.gitxact("tracker", "get", "n", cwd=repo)).strip() == str(2 * rounds)
    ok(team.a.git("fsck", "--strict", cwd=repo))
