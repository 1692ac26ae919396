"""gitxact's torture run: many workers, random operations, random SIGKILLs, then proof.

Workers are separate processes (each in its own session, so a kill takes its git and
gitxact children too) that pick operations from a seeded random generator: commits
through ``gx`` in the shared main worktree, leased worktrees with commits, TDD
sequences (some green checks fail and roll back), transactions that roll back or
commit, tracker increments, ``gitxact gc`` and ``worktree reap`` attempts. A supervisor
SIGKILLs random workers at random moments, runs ``gitxact recover`` and starts a new
incarnation of the worker.

Each worker keeps an independent ledger (its own append-only, fsync'd file) of what it
saw acknowledged. A commit is acknowledged when it is durable from the user's view: a
``gx commit`` outside any transaction that exited 0, or the commits of a transaction or
TDD sequence once ``tx commit`` / ``tdd done`` exited 0 (until then a rollback may, by
design, undo them). A tracker increment is acknowledged when ``tracker incr`` exited 0;
one killed in flight may or may not have landed. At the end every acknowledged commit
must be on a branch, the counter must lie in [acknowledged, acknowledged + in flight],
``git fsck --strict`` must be clean, no lock held, no worktree or lease left, every
state file valid and ``gitxact doctor`` clean. Exit 1 on any loss or inconsistency.

Usage: scripts/torture [--seconds N] [--seed S] [--workers N] [--json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
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
OPS = {"shared-commit": 4, "lease-work": 3, "tdd": 2, "tx": 2, "incr": 4, "gc": 1, "reap": 1}


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

    def run(self, argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=cwd, env=env or self.env, capture_output=True, text=True, timeout=OP_TIMEOUT, check=False
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
    for argv in (
        ["git", "config", "user.name", "torture"],
        ["git", "config", "user.email", "torture@example.com"],
        [GITXACT, "init"],
        [GITXACT, "hooks", "install"],
    ):
        subprocess.run(argv, cwd=repo, check=True, capture_output=True)
    return repo


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
            events["kills"] += 1
            with (ledgers / f"{name}.jsonl").open("a") as ledger:
                ledger.write(json.dumps({"kind": "killed"}) + "\n")
        recovered = sh([GITXACT, "recover", "--json"], repo)
        events["recoveries"] += 1
        if recovered.returncode != 0:
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


def verify(repo: Path, ledgers: Path, events: Counter[str]) -> dict[str, object]:
    """Close everything down the way an operator would, then check what the ledgers say."""
    recovered = sh([GITXACT, "recover", "--json"], repo)
    leases = json.loads(sh([GITXACT, "worktree", "list", "--json"], repo).stdout)["leases"]
    for lease in leases:
        sh([GITXACT, "worktree", "release", lease["agent"], "--force"], repo)
    acked: list[str] = []
    ops: Counter[str] = Counter()
    incr_ok = incr_started = 0
    errors: list[dict[str, object]] = []
    for ledger in sorted(ledgers.glob("*.jsonl")):
        pending = 0
        for line in ledger.read_text().splitlines():
            event = json.loads(line)
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
        "worktrees_left": len(worktrees) - 1,
        "leases_left": len(status["leases"]),
        "doctor_clean": doctor.returncode == 0,
        "doctor_findings": json.loads(doctor.stdout).get("findings", []) if doctor.stdout else [],
        "lock_wait_p50_ms": round(1000 * times.get("wait_p50", 0), 2),
        "lock_wait_p99_ms": round(1000 * times.get("wait_p99", 0), 2),
        "lock_hold_max_ms": round(1000 * times.get("hold_max", 0), 2),
    }


def verdict(result: dict[str, object]) -> list[str]:
    problems = []
    for key in ("lost_commits", "lost_increments", "phantom_increments", "stale_locks", "corrupt_state_files"):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
    for key in ("worktrees_left", "leases_left", "recover_failures", "hung_workers"):
        if result[key]:
            problems.append(f"{key} = {result[key]}")
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
        "worktrees_left", "fsck_clean", "doctor_clean", "failed_on_a_killed_gits_lock_before_recover",
        "lock_wait_p50_ms", "lock_wait_p99_ms", "lock_hold_max_ms",
    )]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
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
        events = supervise(repo, ledgers, args.workers, args.seconds, seed)
        result = verify(repo, ledgers, events)
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
