"""gitxact's torture run: many workers, random operations, random SIGKILLs, then proof.

Workers are separate processes (each in its own session, so a kill takes its git and
gitxact children too) that pick operations from a seeded random generator: commits
through ``gx`` in the shared main worktree, leased worktrees with commits, TDD
sequences (some green checks fail and roll back), transactions that roll back or
commit, tracker increments, ``gitxact gc`` and ``worktree reap`` attempts; and hostile
actions: a kill inside ``git worktree add`` (a stand-in ``git`` in git's exec path stops
it right after its temporary HEAD), forged-but-valid lease records pointing at a
person's worktree, ``main``, a non-gitxact branch and a folder outside, a hook that forks
parallel ``gx add``, raw ``git`` committing beside ``gx`` in the shared worktree, an editor
held open, tracker values of 1 MiB, a live agent that never renews, past a one-second
TTL, which no reap, recover or ``doctor --fix`` may end while its owner runs, and a land
onto another agent's leased branch (which must be refused). A supervisor SIGKILLs random
workers at random moments, runs ``gitxact recover`` and starts a new incarnation of the worker.

Each worker keeps an independent ledger (its own append-only, fsync'd file) of what it
saw acknowledged. A commit is acknowledged when it is durable from the user's view: a
``gx commit`` outside any transaction that exited 0, or the commits of a transaction or
TDD sequence once ``tx commit`` / ``tdd done`` exited 0 (until then a rollback may, by
design, undo them). A tracker increment is acknowledged when ``tracker incr`` exited 0;
one killed in flight may or may not have landed. At the end every acknowledged commit
must be on a branch, the counter must lie in [acknowledged, acknowledged + in flight],
``git fsck --strict`` must be clean, no lock held, no worktree or lease left, every
state file valid and ``gitxact doctor`` clean; nothing gitxact did not create may be gone
(the person's worktree and its ignored file, ``main``, the other branch, the outside
folder), and no worktree may be wedged (``git status`` works in each). Exit 1 on any
loss or inconsistency.

Beside the workers, where the machine allows it (root, ``ip netns``, PostgreSQL), the
"partitioned holder" runs round after round (:mod:`fixtures.partition`): host A, in a
network namespace of its own, holds a named lock on a PostgreSQL server over a veth link
that is then cut, and host B asks for the lock; every round A's job and grandchild must
have ended before B's job began, A exit 75 and B's fence above A's.

Usage: scripts/torture [--seconds N] [--seed S] [--workers N] [--json] [--keep] [--no-partition]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fixtures import repos

BIN = Path(sys.executable).parent
GITXACT = str(BIN / "gitxact")
GX = str(BIN / "gx")
OP_TIMEOUT = 120.0

# What a worker does, and how often (weights).
OPS = {
    "shared-commit": 4,
    "lease-work": 3,
    "tdd": 2,
    "tx": 2,
    "incr": 4,
    "gc": 1,
    "reap": 1,
    # Hostile actions (issue: safety under hostile conditions).
    "kill-inside-add": 1,
    "forge-record": 1,
    "forked-hook": 1,
    "raw-git": 2,
    "editor-open": 1,
    "big-value": 1,
    # A live agent that never renews, past its TTL: never ended while its owner runs (issue 24).
    "live-past-ttl": 1,
    "foreign-land": 1,
}
#: The TTL of a "live-past-ttl" lease (git's GIT_CONFIG_* variables, for that acquire only).
LIVE_TTL = "1"
STAND_IN = """#!/bin/sh
case "$1 $2" in
  "symbolic-ref HEAD"|"update-ref HEAD") if [ -n "$STOP_AT" ]; then touch "$STOP_AT"; exec sleep 60; fi;;
esac
exec {real}/git "$@"
"""


# -- the worker ----------------------------------------------------------------------------


class Worker:
    def __init__(self, repo: Path, name: str, incarnation: int, seed: int, ledger: Path) -> None:
        self.repo = repo
        self.agent = name
        self.tag = f"{name}.{incarnation}"
        self.rng = random.Random(f"{seed}/{self.tag}")
        self.ledger = ledger.open("a", encoding="utf-8")
        self.env = {**os.environ, "GITXACT_AGENT": name, "GIT_AUTHOR_NAME": name, "GIT_COMMITTER_NAME": name}
        self.lease: dict[str, str] | None = None
        self.count = 0

    def note(self, **event: object) -> None:
        self.ledger.write(json.dumps(event) + "\n")
        self.ledger.flush()
        os.fsync(self.ledger.fileno())

    def run(
        self, argv: list[str], cwd: Path, env: dict[str, str] | None = None, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = env or self.env
        return subprocess.run(
            argv, cwd=cwd, env=env, input=input, capture_output=True, text=True, timeout=OP_TIMEOUT, check=False
        )

    def must(self, argv: list[str], cwd: Path, op: str) -> subprocess.CompletedProcess[str]:
        proc = self.run(argv, cwd)
        if proc.returncode != 0:
            self.note(kind="error", op=op, argv=argv, code=proc.returncode, stderr=proc.stderr[-400:])
        return proc

    def message(self, what: str) -> str:
        self.count += 1
        return f"torture {self.tag} {what} {self.count}"

    def commit(self, where: Path, subject: str) -> bool:
        name = f"{self.tag}-{self.count}-{self.rng.randrange(10**6)}.txt"
        (where / name).write_text(subject + "\n")
        if self.must([GX, "add", name], where, "gx add").returncode != 0:
            return False
        # `-- name`: only this file, so a writer sharing the worktree never sweeps up another's staged file.
        return self.must([GX, "commit", "-q", "-m", subject, "--", name], where, "gx commit").returncode == 0

    # Operations -----------------------------------------------------------------------

    def op_shared_commit(self) -> None:
        subject = self.message("shared")
        if self.commit(self.repo, subject):
            self.note(kind="commit", subject=subject)

    def ensure_lease(self) -> Path | None:
        if self.lease is None:
            proc = self.must([GITXACT, "worktree", "acquire", self.agent, "--json"], self.repo, "acquire")
            if proc.returncode != 0:
                return None
            doc = json.loads(proc.stdout)
            if doc.get("token") is None:  # a lease of an earlier incarnation still lives: end it
                return None
            self.lease = doc
            self.env["GITXACT_LEASE_TOKEN"] = doc["token"]
            self.note(kind="op", op="acquire")
        return Path(self.lease["path"])

    def op_lease_work(self) -> None:
        where = self.ensure_lease()
        if where is None:
            return
        for _ in range(self.rng.randint(1, 3)):
            subject = self.message("leased")
            if self.commit(where, subject):
                self.note(kind="commit", subject=subject)
        if self.rng.random() < 0.4 and self.lease is not None:
            release = self.must([GITXACT, "worktree", "release", self.agent, "--force"], self.repo, "release")
            if release.returncode == 0:
                self.note(kind="op", op="release")
                self.lease = None
                self.env.pop("GITXACT_LEASE_TOKEN", None)

    def op_tdd(self) -> None:
        where = self.ensure_lease()
        if where is None:
            return
        red, green = self.message("tdd-red"), self.message("tdd-green")
        test = f"test_{self.tag}_{self.count}.txt"
        (where / test).write_text(red + "\n")
        proc = self.must([GITXACT, "tdd", "red", "--check", "false", "-m", red, test], where, "tdd red")
        if proc.returncode != 0:
            return
        impl = f"impl_{self.tag}_{self.count}.txt"
        (where / impl).write_text(green + "\n")
        fails = self.rng.random() < 0.3
        proc = self.run([GITXACT, "tdd", "green", "--check", "false" if fails else "true", "-m", green, impl], where)
        if fails:
            self.note(
                kind="op", op="tdd-rolled-back" if proc.returncode == 1 else "tdd-unexpected", code=proc.returncode
            )
            return
        if proc.returncode == 0 and self.must([GITXACT, "tdd", "done"], where, "tdd done").returncode == 0:
            self.note(kind="commit", subject=red)
            self.note(kind="commit", subject=green)
            self.note(kind="op", op="tdd-done")

    def op_tx(self) -> None:
        where = self.ensure_lease() if self.rng.random() < 0.7 else None
        if where is None:
            return
        if self.must([GITXACT, "tx", "begin"], where, "tx begin").returncode != 0:
            return
        subjects = [self.message("tx") for _ in range(self.rng.randint(1, 2))]
        landed = [s for s in subjects if self.commit(where, s)]
        if self.rng.random() < 0.5:
            if self.must([GITXACT, "tx", "rollback"], where, "tx rollback").returncode == 0:
                self.note(kind="op", op="tx-rollback")
        elif self.must([GITXACT, "tx", "commit"], where, "tx commit").returncode == 0:
            for subject in landed:
                self.note(kind="commit", subject=subject)
            self.note(kind="op", op="tx-commit")

    def op_incr(self) -> None:
        self.note(kind="incr-start")
        if self.must([GITXACT, "tracker", "incr", "counter"], self.repo, "incr").returncode == 0:
            self.note(kind="incr-ok")

    def op_gc(self) -> None:
        proc = self.run([GITXACT, "gc", "-q"], self.repo)
        self.note(kind="op", op={0: "gc-ran", 3: "gc-refused"}.get(proc.returncode, f"gc-exit-{proc.returncode}"))

    def op_reap(self) -> None:
        if self.must([GITXACT, "worktree", "reap"], self.repo, "reap").returncode == 0:
            self.note(kind="op", op="reap")
        if self.lease is not None and not Path(self.lease["path"]).is_dir():
            self.note(kind="error", op="reap", stderr="reap removed this live worker's worktree")

    # Hostile actions ------------------------------------------------------------------

    def op_kill_inside_add(self) -> None:
        """An acquire killed right after git's temporary HEAD: recover must undo it."""
        root = self.repo.parent
        stop = root / f"stop-{self.tag}-{self.count}"
        self.count += 1
        env = {**self.env, "GIT_EXEC_PATH": str(root / "exec-path"), "STOP_AT": str(stop)}
        env.pop("GITXACT_LEASE_TOKEN", None)
        agent = f"k-{self.agent}-{self.count}"
        proc = subprocess.Popen(
            [GITXACT, "worktree", "acquire", agent],
            cwd=self.repo,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        # A session of its own, so the kill takes git's children too; written down first, so
        # the supervisor kills it as well if it kills this worker meanwhile.
        self.note(kind="group", pgid=proc.pid)
        deadline = time.time() + OP_TIMEOUT
        while not stop.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        wait_for_group_to_die(proc.pid)
        self.note(kind="group-done", pgid=proc.pid)
        self.note(kind="op", op="killed-inside-add" if stop.exists() else "kill-inside-add-missed")

    def op_forge_record(self) -> None:
        """A lease record with a valid checksum naming what is not gitxact's, then a repair."""
        from gitxact import Workspace
        from gitxact.leases.records import Lease, leases_file
        from gitxact.util.identity import host_name

        root = self.repo.parent
        victims = [(root / "mine", "main"), (root / "outside", "release"), (root / "mine", "release")]
        path, branch = self.rng.choice(victims)
        ws = Workspace(self.repo)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        forged = Lease(
            agent=f"forged-{self.agent}",
            path=str(path),
            branch=branch,
            base="main",
            token_hash="0" * 64,
            owner_pid=dead.pid,
            owner_host=host_name(),
            created=time.time() - 60,
            heartbeat=time.time() - 60,
            ttl=3600,
            phase=self.rng.choice(["active", "provisioning", "releasing"]),
            branch_created=True,
        )
        with ws.locks.resource("leases"):
            file = leases_file(ws)
            state = file.load(repair=True)
            state.leases[forged.agent] = forged
            file.save(state)
        repair = self.rng.choice([["doctor", "--fix"], ["worktree", "reap"], ["recover"]])
        proc = self.run([GITXACT, *repair], self.repo)
        self.note(kind="op", op="forged-" + repair[0], code=proc.returncode)

    def op_live_past_ttl(self) -> None:
        """An agent whose owner runs and that never renews: its lease goes past its TTL, and
        reap, recover or ``doctor --fix`` (this worker's, another's, the supervisor's) must
        keep it, folder, uncommitted file and all; once its owner is killed, reap ends it with
        the file saved."""
        self.count += 1
        agent = f"live-{self.agent}-{self.count}"
        owner = subprocess.Popen(["sleep", "600"], start_new_session=True)
        self.note(kind="group", pgid=owner.pid)  # first: a kill of this worker kills the owner too
        env = {k: v for k, v in self.env.items() if k != "GITXACT_LEASE_TOKEN"}
        env |= {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gitxact.leaseTtl", "GIT_CONFIG_VALUE_0": LIVE_TTL}
        acquire = self.run(
            [GITXACT, "worktree", "acquire", agent, "--owner-pid", str(owner.pid), "--json"], self.repo, env
        )
        if acquire.returncode == 0:
            path = Path(json.loads(acquire.stdout)["path"])
            work = f"{self.tag} {self.count} uncommitted\n"
            (path / "wip.txt").write_text(work)
            time.sleep(float(LIVE_TTL) + self.rng.uniform(0.3, 1.5))  # past its TTL, no renew
            repair = self.rng.choice([["worktree", "reap"], ["recover"], ["doctor", "--fix"]])
            self.run([GITXACT, *repair], self.repo)
            listed = json.loads(self.run([GITXACT, "worktree", "list", "--json"], self.repo).stdout or "{}")
            lease = next((item for item in listed.get("leases", []) if item["agent"] == agent), None)
            intact = (path / "wip.txt").is_file() and (path / "wip.txt").read_text() == work
            if lease is None or not intact:
                self.note(kind="live-ended", agent=agent, by=repair[0])
                self.note(kind="error", op="live-past-ttl", stderr=f"{repair[0]} ended live {agent}'s worktree")
            else:
                self.note(kind="op", op="live-past-ttl-kept" if lease["expired"] else "live-past-ttl-not-yet-expired")
        else:
            self.note(kind="error", op="live acquire", code=acquire.returncode, stderr=acquire.stderr[-400:])
        with contextlib.suppress(ProcessLookupError):
            os.killpg(owner.pid, signal.SIGKILL)
        owner.wait()
        wait_for_group_to_die(owner.pid)
        self.note(kind="group-done", pgid=owner.pid)
        if acquire.returncode != 0:
            return
        reap = self.run([GITXACT, "worktree", "reap", "--json"], self.repo)
        if reap.returncode != 0:
            return  # a busy lock (exit 75): the supervisor's recover or the final one ends it
        ended = next((e for e in json.loads(reap.stdout)["ended"] if e["agent"] == agent), None)
        if ended is None:
            return  # another worker's reap or a recover ended it first
        saved = ended["snapshot_ref"] and self.run(["git", "show", f"{ended['snapshot_ref']}:wip.txt"], self.repo)
        if saved and saved.returncode == 0 and saved.stdout == work:
            self.note(kind="op", op="live-past-ttl-reaped-when-dead")
        else:
            self.note(kind="error", op="live-past-ttl", stderr=f"{agent}'s uncommitted file was not saved: {ended}")

    def op_forked_hook(self) -> None:
        """A pre-commit hook that runs three `gx add` at once under `gx commit`."""
        where = self.ensure_lease()
        if where is None:
            return
        hooks = self.repo.parent / "forking-hooks"
        subject = self.message("forked")
        files = [f"{self.tag}-{self.count}-h{i}.txt" for i in range(3)]
        for name in files:
            (where / name).write_text(subject + "\n")
        main = where / f"{self.tag}-{self.count}-main.txt"
        main.write_text(subject + "\n")
        if self.must([GX, "add", main.name], where, "gx add").returncode != 0:
            return
        env = {**self.env, "FORK_FILES": " ".join(files)}
        proc = self.run([GX, "-c", f"core.hooksPath={hooks}", "commit", "-q", "-m", subject], where, env)
        if proc.returncode == 0:
            self.note(kind="commit", subject=subject)
            self.note(kind="op", op="forked-hook")
        else:
            self.note(kind="error", op="forked-hook", code=proc.returncode, stderr=proc.stderr[-400:])

    def op_raw_git(self) -> None:
        """Raw git in the worktree gx writers share: it may meet their locks, never lose to them."""
        name = f"{self.tag}-{self.count}-raw-{self.rng.randrange(10**6)}.txt"
        subject = self.message("raw")
        (self.repo / name).write_text(subject + "\n")
        env = {k: v for k, v in self.env.items() if k not in ("GITXACT_AGENT", "GITXACT_LEASE_TOKEN")}
        add = self.run(["git", "add", name], self.repo, env)
        commit = add
        if add.returncode == 0:
            commit = self.run(["git", "commit", "-q", "-m", subject, "--", name], self.repo, env)
        for proc in (add, commit):
            damaged = "unable to write new_index file" in proc.stderr or "corrupt" in proc.stderr
            if damaged:
                self.note(kind="error", op="raw-git", code=proc.returncode, stderr=proc.stderr[-400:])
        if commit.returncode == 0:
            self.note(kind="commit", subject=subject)
            self.note(kind="op", op="raw-commit")
        else:
            self.note(kind="op", op="raw-refused")  # git's own "another git is running": by design

    def op_editor_open(self) -> None:
        """`gx commit` whose editor stays open a while, in the worker's own worktree."""
        where = self.ensure_lease()
        if where is None:
            return
        subject = self.message("editor")
        name = f"{self.tag}-{self.count}-ed.txt"
        (where / name).write_text(subject + "\n")
        if self.must([GX, "add", name], where, "gx add").returncode != 0:
            return
        editor = f"sleep {self.rng.uniform(0.5, 2.5):.2f}; echo '{subject}' >"
        proc = self.run([GX, "-c", f"core.editor={editor}", "commit", "-q"], where)
        if proc.returncode == 0:
            self.note(kind="commit", subject=subject)
            self.note(kind="op", op="editor-commit")
        else:
            self.note(kind="error", op="editor-commit", code=proc.returncode, stderr=proc.stderr[-400:])

    def op_big_value(self) -> None:
        """A 1 MiB tracker value beside the counter: large files must lose no increment."""
        self.count += 1
        value = json.dumps({"n": self.count, "pad": "x" * (1024 * 1024 - 200)})
        self.note(kind="big-start", n=self.count)
        # Through stdin: one argument holds at most 128 KiB (Linux's MAX_ARG_STRLEN), so as
        # an argument the value never reached gitxact (E2BIG, and the worker died of it).
        argv = [GITXACT, "tracker", "set", f"big-{self.agent}", "-"]
        proc = self.run(argv, self.repo, input=value)
        if proc.returncode == 0:
            self.note(kind="big-ok", n=self.count)
        else:
            self.note(kind="error", op="big value", argv=argv, code=proc.returncode, stderr=proc.stderr[-400:])

    def op_foreign_land(self) -> None:
        """Land its own branch onto another agent's leased branch: refused (exit 3), nothing moved.

        Only a lease held the whole time counts (same agent, path and creation before and
        after): one released or re-acquired meanwhile may rightly end otherwise.
        """
        where = self.ensure_lease()
        if where is None:
            return

        def others() -> dict[tuple[str, str, float], str]:
            listing = self.run([GITXACT, "worktree", "list", "--json"], self.repo)
            leases = json.loads(listing.stdout)["leases"] if listing.returncode == 0 else []
            return {(x["agent"], x["path"], x["created"]): x["branch"] for x in leases if x["agent"] != self.agent}

        before = others()
        if not before:
            return
        victim = self.rng.choice(sorted(before))
        branch = before[victim]
        tip = self.run(["git", "rev-parse", "-q", "--verify", f"refs/heads/{branch}"], self.repo).stdout.strip()
        proc = self.run([GITXACT, "land", "--onto", branch, "--timeout", "10"], where)
        held = victim in others()
        if proc.returncode == 3 and "[leased_by_other]" in proc.stderr:
            self.note(kind="op", op="foreign-land-refused")
        elif held and (proc.returncode == 0 or "landed" in proc.stdout):
            self.note(kind="error", op="foreign-land", code=proc.returncode, stderr=f"landed onto {branch} ({tip})")
        elif held and proc.returncode not in (3, 75):
            self.note(kind="error", op="foreign-land", code=proc.returncode, stderr=proc.stderr[-400:])
        else:
            self.note(kind="op", op="foreign-land-raced")  # the lease ended or changed meanwhile

    def loop(self, deadline: float) -> None:
        names, weights = list(OPS), list(OPS.values())
        while time.time() < deadline:
            op = self.rng.choices(names, weights)[0]
            getattr(self, "op_" + op.replace("-", "_"))()
        if self.lease is not None:
            self.must([GITXACT, "worktree", "release", self.agent, "--force"], self.repo, "release")


# -- the supervisor ------------------------------------------------------------------------


def sh(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=OP_TIMEOUT, check=False)


def make_repo(root: Path) -> Path:
    author = {"GIT_AUTHOR_NAME": "torture", "GIT_AUTHOR_EMAIL": "torture@example.com"}
    author |= {"GIT_COMMITTER_NAME": "torture", "GIT_COMMITTER_EMAIL": "torture@example.com"}
    repo = repos.make_repo(root / "repo", env={**os.environ, **author})
    (repo / ".gitignore").write_text(".env\n")
    for argv in (
        ["git", "config", "user.name", "torture"],
        ["git", "config", "user.email", "torture@example.com"],
        ["git", "add", ".gitignore"],
        ["git", "commit", "-q", "-m", "ignore .env"],
        # What gitxact did not make and must never delete, whatever a forged record says.
        ["git", "branch", "release"],
        ["git", "worktree", "add", "-q", "-b", "mine", str(root / "mine")],
        [GITXACT, "init"],
        [GITXACT, "hooks", "install"],
    ):
        subprocess.run(argv, cwd=repo, check=True, capture_output=True)
    (root / "mine" / ".env").write_text("SECRET=1\n")
    (root / "outside").mkdir()
    # git's exec path with a stand-in `git` that stops `worktree add` after its temporary HEAD.
    real = subprocess.run(["git", "--exec-path"], capture_output=True, text=True, check=True).stdout.strip()
    exec_path = root / "exec-path"
    exec_path.mkdir()
    for entry in os.listdir(real):
        if entry != "git":
            (exec_path / entry).symlink_to(os.path.join(real, entry))
    (exec_path / "git").write_text(STAND_IN.format(real=real))
    (exec_path / "git").chmod(0o755)
    # A pre-commit hook that forks a `gx add` per file in $FORK_FILES and waits for them all.
    hooks = root / "forking-hooks"
    hooks.mkdir()
    hook = hooks / "pre-commit"
    hook.write_text(
        "#!/bin/sh\nunset GIT_INDEX_FILE\npids=\n"
        f'for f in $FORK_FILES; do {GX} add "$f" & pids="$pids $!"; done\n'
        'for p in $pids; do wait "$p" || exit 1; done\n'
    )
    hook.chmod(0o755)
    return repo


def bystanders_lost(root: Path, repo: Path) -> list[str]:
    """What gitxact did not create and that is gone or changed (must stay empty)."""
    lost = []
    heads = set(sh(["git", "for-each-ref", "--format=%(refname:short)", "refs/heads/"], repo).stdout.split())
    lost += [f"branch {name}" for name in ("main", "release", "mine") if name not in heads]
    env_file = root / "mine" / ".env"
    if not env_file.is_file() or env_file.read_text() != "SECRET=1\n":
        lost.append("the person's worktree and its ignored .env")
    if not (root / "outside").is_dir():
        lost.append("the folder outside the repository")
    return lost


def wedged(repo: Path) -> list[str]:
    """Worktrees git cannot work in (a HEAD of zeros, a broken admin folder)."""
    found = []
    for line in sh(["git", "worktree", "list", "--porcelain"], repo).stdout.splitlines():
        if line.startswith("worktree ") and sh(["git", "status", "--porcelain"], Path(line[9:])).returncode != 0:
            found.append(line[9:])
    admin = repo / ".git" / "worktrees"
    if admin.is_dir():
        for entry in admin.iterdir():
            head = entry / "HEAD"
            if not head.is_file() or set(head.read_text().strip()) <= {"0"}:
                found.append(f"half-made admin folder {entry.name}")
    return found


def spawn(
    repo: Path, ledgers: Path, name: str, incarnation: int, seed: int, deadline: float
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, __file__, "--worker", name, "--incarnation", str(incarnation), "--seed", str(seed)]
    argv += ["--repo", str(repo), "--ledger", str(ledgers / f"{name}.jsonl"), "--deadline", str(deadline)]
    return subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_group_to_die(pgid: int, limit: float = 10.0) -> None:
    """A SIGKILLed git may take a moment to vanish; recover rightly keeps its locks until then."""
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.02)


def supervise(repo: Path, ledgers: Path, workers: int, seconds: float, seed: int) -> Counter[str]:
    rng = random.Random(f"{seed}/supervisor")
    deadline = time.time() + seconds
    events: Counter[str] = Counter()
    procs = {f"w{i}": spawn(repo, ledgers, f"w{i}", 0, seed, deadline) for i in range(workers)}
    incarnations = dict.fromkeys(procs, 0)
    next_kill = time.time() + rng.uniform(2, 6)
    while time.time() < deadline - 3:
        time.sleep(0.1)
        if time.time() < next_kill:
            continue
        name = rng.choice(sorted(procs))
        if procs[name].poll() is None:
            os.killpg(procs[name].pid, signal.SIGKILL)
            procs[name].wait()
            wait_for_group_to_die(procs[name].pid)
            ledger_path = ledgers / f"{name}.jsonl"
            for pgid in open_groups(ledger_path):  # sessions the worker started
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
                wait_for_group_to_die(pgid)
                with ledger_path.open("a") as ledger:  # handled: never signalled again (pids are reused)
                    ledger.write(json.dumps({"kind": "group-done", "pgid": pgid}) + "\n")
            events["kills"] += 1
            with (ledgers / f"{name}.jsonl").open("a") as ledger:
                ledger.write(json.dumps({"kind": "killed"}) + "\n")
        recovered = sh([GITXACT, "recover", "--json"], repo)
        events["recoveries"] += 1
        if recovered.returncode != 0 and _only_live_locks(recovered.stdout):
            # A raw git at work beside gx holds its locks: recover keeps them and says so
            # (exit 1, run it again later). By design; the final recover must be clean.
            events["recoveries deferred by a live git"] += 1
        elif recovered.returncode != 0:
            events["recover failures"] += 1
            print(
                f"recover exit {recovered.returncode}: {recovered.stdout[-600:]}{recovered.stderr[-600:]}",
                file=sys.stderr,
            )
        incarnations[name] += 1
        procs[name] = spawn(repo, ledgers, name, incarnations[name], seed, deadline)
        next_kill = time.time() + rng.uniform(2, 6)
    for proc in procs.values():
        try:
            proc.wait(timeout=OP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            events["hung workers"] += 1
    return events


def open_groups(ledger: Path) -> list[int]:
    """Process groups a worker started in sessions of their own and did not see end."""
    groups: set[int] = set()
    with contextlib.suppress(FileNotFoundError):
        for line in ledger.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # the last line of a worker killed mid-write
                continue
            if event["kind"] == "group":
                groups.add(event["pgid"])
            elif event["kind"] == "group-done":
                groups.discard(event["pgid"])
    return sorted(groups)


def _only_live_locks(report: str) -> bool:
    try:
        steps = json.loads(report)["steps"]
    except (ValueError, KeyError, TypeError):
        return False
    problems = [p for step in steps for p in step.get("problems", [])]
    return bool(problems) and all(" is running in this repository" in p or "has it open" in p for p in problems)


def verify(repo: Path, ledgers: Path, events: Counter[str]) -> dict[str, object]:
    """Close everything down the way an operator would, then check what the ledgers say."""
    recovered = sh([GITXACT, "recover", "--json"], repo)
    leases = json.loads(sh([GITXACT, "worktree", "list", "--json"], repo).stdout)["leases"]
    for lease in leases:
        sh([GITXACT, "worktree", "release", lease["agent"], "--force"], repo)
    acked: list[str] = []
    big: dict[str, tuple[int | None, int | None]] = {}
    ops: Counter[str] = Counter()
    live_ended = 0
    incr_ok = incr_started = 0
    errors: list[dict[str, object]] = []
    for ledger in sorted(ledgers.glob("*.jsonl")):
        pending = 0
        big_ok: int | None = None
        big_started: int | None = None
        for line in ledger.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:  # the torn last line of a worker killed mid-write: never acknowledged
                continue
            kind = event["kind"]
            if kind == "commit":
                acked.append(event["subject"])
                ops["commit acknowledged"] += 1
            elif kind == "op":
                ops[event["op"]] += 1
            elif kind == "incr-start":
                pending += 1
                incr_started += 1
            elif kind == "incr-ok":
                pending -= 1
                incr_ok += 1
            elif kind == "error":
                errors.append(event)
            elif kind == "live-ended":
                live_ended += 1
            elif kind == "big-start":
                big_started = event["n"]
            elif kind == "big-ok":
                big_ok = event["n"]
        big[ledger.stem] = (big_ok, big_started)
    on_branches = set(sh(["git", "log", "--branches", "--format=%s"], repo).stdout.splitlines())
    lost = [subject for subject in acked if subject not in on_branches]
    counter = json.loads(sh([GITXACT, "tracker", "get", "counter", "--json"], repo).stdout or "{}").get("value", 0)
    in_flight = incr_started - incr_ok
    fsck = sh(["git", "fsck", "--strict", "--no-dangling", "--no-progress"], repo)
    status = json.loads(sh([GITXACT, "status", "--json"], repo).stdout)
    worktrees = [
        line
        for line in sh(["git", "worktree", "list", "--porcelain"], repo).stdout.splitlines()
        if line.startswith("worktree ")
    ]
    doctor = sh([GITXACT, "doctor", "--json"], repo)
    values = json.loads(sh([GITXACT, "tracker", "get", "--json"], repo).stdout or "{}").get("entries", {})
    lost_big = []
    for worker, (ok, started) in big.items():
        entry = values.get(f"big-{worker}")
        now = entry["value"]["n"] if isinstance(entry, dict) and isinstance(entry.get("value"), dict) else None
        if ok is not None and now not in (ok, started):
            lost_big.append(f"{worker}: acknowledged {ok}, found {now}")
    times = status["lock_times"].get("all", {})
    # Refusals (3) and lock timeouts (75) are the design; so is git's "<x>.lock': File
    # exists" where a killed git left a lock, until it is proven dead: by `recover`, or for
    # a worktree's index.lock by the next gx there. (HEAD.lock and ref locks wait for
    # recover: a git in another worktree may hold those, see gitxact.git.lockfiles.)
    stale = [e for e in errors if ".lock': File exists" in str(e.get("stderr", ""))]
    unexpected = [e for e in errors if e.get("code") not in (3, 75) and e not in stale]
    return {
        "ops": dict(sorted(ops.items())),
        "errors_by_op": dict(Counter(str(e["op"]) for e in errors)),
        "unexpected_errors": unexpected[:20],
        "failed_on_a_killed_gits_lock_before_recover": len(stale),
        "kills": events["kills"],
        "recoveries": events["recoveries"],
        "recoveries_deferred_by_a_live_git": events["recoveries deferred by a live git"],
        "recover_failures": events["recover failures"] + (recovered.returncode != 0),
        "hung_workers": events["hung workers"],
        "commits_acknowledged": len(acked),
        "lost_commits": len(lost),
        "lost_commit_subjects": lost[:20],
        "increments_acknowledged": incr_ok,
        "increments_in_flight_when_killed": in_flight,
        "counter": counter,
        "lost_increments": max(0, incr_ok - counter),
        "phantom_increments": max(0, counter - incr_ok - in_flight),
        "fsck_clean": fsck.returncode == 0,
        "stale_locks": len(status["locks"]),
        "corrupt_state_files": sum(1 for f in status["state_files"] if not f["ok"]),
        "worktrees_left": len(worktrees) - 2,  # the main worktree and the person's own
        "live_worktrees_ended": live_ended,
        "deleted_not_ours": bystanders_lost(repo.parent, repo),
        "wedged": wedged(repo),
        "lost_big_values": lost_big,
        "leases_left": len(status["leases"]),
        "doctor_clean": doctor.returncode == 0,
        "doctor_findings": json.loads(doctor.stdout).get("findings", []) if doctor.stdout else [],
        "lock_wait_p50_ms": round(1000 * times.get("wait_p50", 0), 2),
        "lock_wait_p99_ms": round(1000 * times.get("wait_p99", 0), 2),
        "lock_hold_max_ms": round(1000 * times.get("hold_max", 0), 2),
    }


class PartitionedHolder(threading.Thread):
    """The partitioned-holder rounds, until *deadline* (at least one); :attr:`result` after."""

    def __init__(self, root: Path, deadline: float) -> None:
        super().__init__(name="partitioned holder", daemon=True)
        self.root = root / "partition"
        self.deadline = deadline
        self.result: dict[str, object] = {"skipped": None, "rounds": 0, "overlaps": 0, "problems": []}

    def run(self) -> None:
        from fixtures import partition
        from fixtures.postgres import find_bin_dir, start_server

        why = partition.why_not() or (None if find_bin_dir() else "PostgreSQL's initdb is not installed")
        if why is not None:
            self.result["skipped"] = why
            return
        problems: list[str] = []
        net = partition.Partition(f"t{os.getpid() % 10000}")
        try:
            net.make()
            server = start_server(netns=net.server, listen=partition.SERVER_ADDR)
            try:
                author = {"GIT_AUTHOR_NAME": "torture", "GIT_AUTHOR_EMAIL": "torture@example.com"}
                author |= {"GIT_COMMITTER_NAME": "torture", "GIT_COMMITTER_EMAIL": "torture@example.com"}
                host_a = repos.make_repo(self.root / "host-a", env={**os.environ, **author})
                partition.join_hosts(host_a, self.root / "host-b", net, server.tcp_dsn)
                rounds = overlaps = 0
                while rounds == 0 or time.time() < self.deadline:
                    seen = partition.partitioned_holder(
                        net, host_a, self.root / "host-b", self.root / f"round-{rounds}"
                    )
                    rounds += 1
                    overlaps += seen.overlapped()
                    problems += [f"round {rounds}: {p}" for p in seen.problems()]
                self.result.update(rounds=rounds, overlaps=overlaps)
            finally:
                server.remove()
        except Exception as exc:  # reported as a problem of the run, not a crash of it
            problems.append(f"the partitioned holder could not run: {type(exc).__name__}: {exc}")
        finally:
            net.remove()
            self.result["problems"] = problems


def verdict(result: dict[str, object]) -> list[str]:
    problems = []
    problems += result["partition"]["problems"]  # type: ignore[index]
    for key in ("lost_commits", "lost_increments", "phantom_increments", "stale_locks", "corrupt_state_files"):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    for key in (
        "worktrees_left",
        "live_worktrees_ended",
        "leases_left",
        "recover_failures",
        "hung_workers",
        "deleted_not_ours",
        "wedged",
    ):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    if result["lost_big_values"]:
        problems.append(f"lost tracker values: {result['lost_big_values']}")
    if result["unexpected_errors"]:
        problems.append(f"{len(result['unexpected_errors'])} unexpected command failures")  # type: ignore[arg-type]
    if not result["fsck_clean"]:
        problems.append("git fsck --strict is not clean")
    if not result["doctor_clean"]:
        problems.append("gitxact doctor found inconsistencies")
    return problems


def render(result: dict[str, object], seed: int, seconds: float, workers: int) -> str:
    lines = [f"gitxact torture: {workers} workers, {seconds:g} s, seed {seed}", ""]
    rows = [(f"ops: {k}", v) for k, v in result["ops"].items()]  # type: ignore[attr-defined]
    rows += [(k.replace("_", " "), result[k]) for k in (
        "kills", "recoveries", "commits_acknowledged", "lost_commits", "increments_acknowledged",
        "increments_in_flight_when_killed", "counter", "lost_increments", "corrupt_state_files", "stale_locks",
        "worktrees_left", "live_worktrees_ended", "deleted_not_ours", "wedged", "fsck_clean", "doctor_clean",
        "failed_on_a_killed_gits_lock_before_recover",
        "lock_wait_p50_ms", "lock_wait_p99_ms", "lock_hold_max_ms",
    )]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
    side: dict[str, object] = result["partition"]  # type: ignore[assignment]
    if side["skipped"]:
        lines.append(f"  partitioned holder: skipped ({side['skipped']})")
    else:
        lines.append(f"  partitioned holder: {side['rounds']} rounds, {side['overlaps']} overlapping")
    if result["errors_by_op"]:
        lines.append(f"  failed commands by operation: {result['errors_by_op']}")
    for error in result["unexpected_errors"]:  # type: ignore[attr-defined]
        last = (str(error.get("stderr", "")).strip().splitlines() or [""])[-1]
        lines.append(f"  unexpected: {error.get('op')} exit {error.get('code')}: {last[:200]}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--keep", action="store_true", help="keep the temporary repository")
    parser.add_argument("--no-partition", action="store_true", help="skip the partitioned-holder rounds")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--incarnation", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--repo", help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    if args.worker:
        Worker(Path(args.repo), args.worker, args.incarnation, seed, Path(args.ledger)).loop(args.deadline)
        return 0
    root = Path(tempfile.mkdtemp(prefix="gitxact-torture-"))
    try:
        repo = make_repo(root)
        ledgers = root / "ledgers"
        ledgers.mkdir()
        print(f"torture: seed {seed}, {args.workers} workers, {args.seconds:g} s in {root}", file=sys.stderr)
        side = PartitionedHolder(root, time.time() + args.seconds)
        if args.no_partition:
            side.result["skipped"] = "--no-partition"
        else:
            side.start()
        events = supervise(repo, ledgers, args.workers, args.seconds, seed)
        if side.is_alive():
            side.join(300)
        result = verify(repo, ledgers, events)
        result["partition"] = side.result
        problems = verdict(result)
        result.update(schema=1, seed=seed, seconds=args.seconds, workers=args.workers, problems=problems)
        print(json.dumps(result, indent=2) if args.json else render(result, seed, args.seconds, args.workers))
        for problem in problems:
            print(f"torture: FAILED: {problem}", file=sys.stderr)
        args.keep = args.keep or bool(problems)  # a failed run is kept to look into
        return 1 if problems else 0
    finally:
        if args.keep:
            print(f"torture: kept {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
