"""gitxact's benchmark: every figure measured side by side with its raw baseline.

These machines are noisy, so no figure is an absolute time on its own: each gitxact
measurement is run interleaved with its baseline in the same run and reported as a
ratio. Run through ``scripts/bench`` (which sets up .venv); ``--quick`` shortens it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fixtures import repos  # noqa: E402
from gitxact import Workspace  # noqa: E402

GITXACT = [sys.executable, "-m", "gitxact"]
#: The console script, as users run it (``-m`` would add runpy's cost).
GITXACT_SCRIPT = [str(Path(sys.executable).parent / "gitxact")]
Row = dict[str, str]
ROWS: list[Row] = []
#: ``--files`` and ``--leases``: the monorepo sections' sizes whatever ``--quick`` says (a full-size
#: run with the short run's rounds, where a loaded machine would make the full one too long).
SIZES: dict[str, int] = {}


def row(figure: str, gitxact: str, baseline: str, ratio: str, goal: str = "") -> None:
    ROWS.append({"figure": figure, "gitxact": gitxact, "baseline": baseline, "ratio": ratio, "goal": goal})
    print(f"  {figure}: {gitxact} vs {baseline} -> {ratio} {goal}", file=sys.stderr, flush=True)


#: Commits the bench makes are by a fixed author, whatever the machine's git config.
AUTHOR = {"GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b", "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}


#: The first commit of a large repository starts ``git gc --auto`` (its loose objects): run in
#: the foreground, untimed, not detached into the figures that follow it.
NO_DETACHED_GC = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "gc.autoDetach", "GIT_CONFIG_VALUE_0": "false"}


def make_repo(root: Path, name: str = "repo", files: int = 0) -> Path:
    return repos.make_repo(root / name, files=files, env={**os.environ, **AUTHOR, **NO_DETACHED_GC})


def interleaved(a: Callable[[], None], b: Callable[[], None], rounds: int) -> tuple[float, float]:
    """Median seconds of *a* and of *b*, run alternately so drift hits both alike."""
    times_a: list[float] = []
    times_b: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        a()
        times_a.append(time.perf_counter() - start)
        start = time.perf_counter()
        b()
        times_b.append(time.perf_counter() - start)
    return statistics.median(times_a), statistics.median(times_b)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def bench_lock_cost(tmp: Path, quick: bool) -> None:
    repo = make_repo(tmp, "locks")
    ws = Workspace(repo)
    ws.init()
    raw = tmp / "raw.lock"

    def raw_flock() -> None:
        fd = os.open(raw, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def index_lock() -> None:  # git's own lock discipline: O_EXCL create, then unlink
        path = tmp / "index.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(path)

    rounds = 200 if quick else 1000

    def repo_exclusive() -> None:
        with ws.locks.repository():  # the lock itself; ws.lock() also takes every worktree's
            pass

    def worktree_lock() -> None:
        with ws.worktree_lock():
            pass

    a, b = interleaved(repo_exclusive, index_lock, rounds)
    row(
        "lock acquire+release: repository exclusive",
        ms(a),
        f"{ms(b)} (git index.lock create+unlink)",
        f"{a / b:.1f}x",
        "goal <= 1 ms: " + ("met" if a <= 0.001 else "NOT met"),
    )
    a, b = interleaved(worktree_lock, raw_flock, rounds)
    row(
        "lock acquire+release: worktree",
        ms(a),
        f"{ms(b)} (bare flock)",
        f"{a / b:.1f}x",
        "goal <= 1 ms: " + ("met" if a <= 0.001 else "NOT met"),
    )


def bench_event_cost(tmp: Path, quick: bool) -> None:
    """What the event record adds to a lock acquire+release: the same lock, with and without its append."""
    from gitxact.util.eventlog import EventLog

    class Unrecorded(EventLog):
        def emit(self, kind: str, agent: str | None = None, /, **fields: object) -> None:
            return None

    repo = make_repo(tmp, "events")
    recorded = Workspace(repo)
    recorded.init()
    unrecorded = Workspace(repo)
    unrecorded.locks.events = Unrecorded(recorded.locks.events.folder)

    def with_event() -> None:
        with recorded.worktree_lock():
            pass

    def without_event() -> None:
        with unrecorded.worktree_lock():
            pass

    a, b = interleaved(with_event, without_event, 300 if quick else 3000)
    added = (a - b) / b
    row(
        "event append per lock acquire+release (worktree lock)",
        ms(a),
        f"{ms(b)} (no event)",
        f"{added * 100:+.1f}%",
        "goal <= 10%: " + ("met" if added <= 0.10 else "NOT met"),
    )


def bench_tracker(tmp: Path, quick: bool) -> None:
    repo = make_repo(tmp, "tracker")
    ws = Workspace(repo)
    ws.init()
    raw = tmp / "raw-tracker.json"
    raw.write_text("{}")
    raw_rmw = (
        f"import json,pathlib; p=pathlib.Path({str(raw)!r}); d=json.loads(p.read_text()); d['n']=d.get('n',0)+1;"
        " p.write_text(json.dumps(d))"
    )

    def cli_incr() -> None:
        subprocess.run([*GITXACT, "tracker", "incr", "n"], cwd=repo, check=True, stdout=subprocess.DEVNULL)

    def cli_raw() -> None:
        subprocess.run([sys.executable, "-c", raw_rmw], check=True)

    a, b = interleaved(cli_incr, cli_raw, 10 if quick else 30)
    row(
        "`gitxact tracker incr` (process)",
        ms(a),
        f"{ms(b)} (python -c JSON read-modify-write, no lock)",
        f"{a / b:.1f}x",
    )

    def lib_incr() -> None:
        ws.tracker.incr("m")

    def lib_raw() -> None:
        d = json.loads(raw.read_text())
        d["m"] = d.get("m", 0) + 1
        raw.write_text(json.dumps(d))

    a, b = interleaved(lib_incr, lib_raw, 100 if quick else 400)
    row(
        "tracker.incr() in-process (lock + fsync'd atomic write)",
        ms(a),
        f"{ms(b)} (raw JSON RMW, no fsync)",
        f"{a / b:.1f}x",
    )


def cpu_seconds(argv: list[str], cwd: Path | None = None) -> float:
    """User+system CPU of one run of *argv* and everything it waited for (git included)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def in_starts(value: float, start: float) -> str:
    return f"{value / start:.2f} S"


def bench_startup(tmp: Path, quick: bool) -> None:
    """The CLI's cost in bare interpreter start-ups (S = CPU of `python -c pass`), side by side."""
    repo = make_repo(tmp, "startup")
    Workspace(repo).init()
    bare = [sys.executable, "-c", "pass"]
    commands = {
        "`gitxact --version`": [*GITXACT_SCRIPT, "--version"],
        "`gitxact tracker incr`": [*GITXACT_SCRIPT, "tracker", "incr", "n"],
        "`gitxact lock -- true`": [*GITXACT_SCRIPT, "lock", "--", "true"],
        "`gitxact status`": [*GITXACT_SCRIPT, "status"],
    }
    rounds = 8 if quick else 25
    cpu: dict[str, list[float]] = {name: [] for name in ["S", *commands]}
    for _ in range(rounds):
        cpu["S"].append(cpu_seconds(bare))
        for name, argv in commands.items():
            cpu[name].append(cpu_seconds(argv, repo))
    start = statistics.median(cpu["S"])
    for name in commands:
        value = statistics.median(cpu[name])
        goal = "" if "version" in name else "goal <= 2.5 S: " + ("met" if value <= 2.5 * start else "NOT met")
        row(f"CPU of {name}", ms(value), f"{ms(start)} = S (python -c pass)", in_starts(value, start), goal)


def bench_contention(tmp: Path, quick: bool) -> None:
    repo = make_repo(tmp, "contention")
    Workspace(repo).init()
    seconds = 5 if quick else 20
    worker = ROOT / "fixtures" / "workers.py"
    outs = [tmp / f"contend-{i}.jsonl" for i in range(16)]
    counter = tmp / "contend-counter"
    procs = [
        subprocess.Popen([sys.executable, str(worker), "contend", str(repo), str(seconds), str(o), "2", str(counter)])
        for o in outs
    ]
    for proc in procs:
        proc.wait()
    grants = [json.loads(line) for o in outs for line in o.read_text().splitlines() if line]
    waits = sorted(g["waited"] for g in grants)
    served = len({g["pid"] for g in grants})
    p50, p99, worst = waits[len(waits) // 2], waits[int(len(waits) * 0.99)], waits[-1]
    mean = statistics.mean(waits)
    row(
        f"16 processes x {seconds}s on the exclusive lock ({len(grants)} grants, {served}/16 served)",
        f"wait p50 {ms(p50)}, p99 {ms(p99)}, max {ms(worst)}",
        f"mean {ms(mean)}",
        f"max/mean {worst / mean:.1f}",
        "FIFO: no waiter overtaken",
    )


def _gx_argv() -> list[str]:
    script = Path(sys.executable).parent / "gx"  # the console script, as users run it
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from gitxact.gx.main import main; sys.exit(main())"]


def _quiet(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)


def bench_gx(tmp: Path, quick: bool) -> None:
    """gx's read-only fast path and its locked path, side by side with raw git."""
    repo = make_repo(tmp, "gx")
    subprocess.run(["git", "config", "alias.st", "status"], cwd=repo, check=True)
    gx = _gx_argv()
    rounds = 15 if quick else 60
    times: dict[str, list[float]] = {"pass": [], "git": [], "gx": [], "gx st": []}
    runs = {
        "pass": lambda: _quiet([sys.executable, "-c", "pass"], repo),
        "git": lambda: _quiet(["git", "status"], repo),
        "gx": lambda: _quiet([*gx, "status"], repo),
        "gx st": lambda: _quiet([*gx, "st"], repo),
    }
    for _ in range(rounds):
        for name, job in runs.items():
            start = time.perf_counter()
            job()
            times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(values) for name, values in times.items()}
    over = (med["gx"] - med["git"]) / med["pass"]
    row(
        "`gx status` over `git status`, in bare Python start-ups",
        f"{ms(med['gx'])} (+{ms(med['gx'] - med['git'])})",
        f"{ms(med['git'])} git status; {ms(med['pass'])} python -c pass",
        f"{over:.2f} S",
        "goal <= 1.1 S: " + ("met" if over <= 1.1 else "NOT met"),
    )
    alias_over = (med["gx st"] - med["git"]) / med["pass"]
    row("`gx st` (alias: asks git for it)", ms(med["gx st"]), f"{ms(med['git'])} (git status)", f"{alias_over:.2f}x")

    def gx_commit() -> None:
        _quiet([*gx, "commit", "-q", "--allow-empty", "-m", "x"], repo)

    def git_commit() -> None:
        _quiet(["git", "commit", "-q", "--allow-empty", "-m", "x"], repo)

    def python_pass() -> None:
        _quiet([sys.executable, "-c", "pass"], repo)

    rounds = 10 if quick else 30
    a, b = interleaved(gx_commit, git_commit, rounds)
    start, _ = interleaved(python_pass, lambda: None, rounds)
    over = (a - b) / start
    row(
        "`gx commit` (locked path) over `git commit`, in bare Python start-ups",
        f"{ms(a)} (+{ms(a - b)})",
        f"{ms(b)} git commit; {ms(start)} python -c pass",
        f"{over:.2f} S",
        "goal <= 1.5 S: " + ("met" if over <= 1.5 else "NOT met"),
    )


def _lease(repo: Path, agent: str) -> Path:
    """A live lease owned by this process (the real library acquire)."""
    return Path(Workspace(repo).worktrees.acquire(agent, owner_pid=os.getpid()).path)


def instructions(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> int | None:
    """Instructions of one run of *argv* and of every program it runs (valgrind's callgrind
    over the whole process tree, load-independent); ``None`` where valgrind is missing."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="gitxact-bench-vg-") as out:
        subprocess.run(
            [
                "valgrind",
                "-q",
                "--tool=callgrind",
                "--trace-children=yes",
                "--child-silent-after-fork=yes",  # a shell's fork counts once, in its exec or its parent
                f"--callgrind-out-file={out}/cg.%p",
                *argv,
            ],
            cwd=cwd,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        total = 0
        for dump in Path(out).iterdir():
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith(("totals:", "summary:")):
                    total += int(line.split()[1])
                    break
        return total


def mega(count: int) -> str:
    return f"{count / 1e6:.0f} M"


REBASED = 30


def _rebase_ready(worktree: Path, main_repo: Path) -> tuple[str, Callable[[], None]]:
    """*REBASED* commits in *worktree* on the old ``main``, one more on ``main``: a rebase to do.

    Returns the tip and a reset back to it (untimed: each round rebases the same commits)."""
    env = {**os.environ, **AUTHOR}
    for i in range(REBASED):
        (worktree / f"rebased-{i}.txt").write_text(f"{i}\n")
        _quiet(["git", "add", f"rebased-{i}.txt"], worktree, env)
        _quiet(["git", "commit", "-q", "--no-verify", "-m", f"rebased {i}"], worktree, env)
    _quiet(["git", "commit", "-q", "--no-verify", "--allow-empty", "-m", "main moves"], main_repo, env)
    tip = subprocess.run(["git", "rev-parse", "HEAD"], cwd=worktree, check=True, capture_output=True, text=True)
    return tip.stdout.strip(), lambda: _quiet(["git", "reset", "-q", "--hard", tip.stdout.strip()], worktree, env)


def bench_hooks(tmp: Path, quick: bool) -> None:
    """What gitxact's native hooks add to raw git: a commit, and a leased agent's commit and rebase."""
    plain = make_repo(tmp, "plain")
    hooked = make_repo(tmp, "hooked")
    subprocess.run([*GITXACT, "hooks", "install"], cwd=hooked, check=True, stdout=subprocess.DEVNULL)
    rounds = 15 if quick else 50
    env = {**os.environ, **AUTHOR}

    def commit(where: Path, extra: dict[str, str] | None = None) -> Callable[[], None]:
        argv = ["git", "commit", "-q", "--allow-empty", "-m", "x"]
        return lambda: _quiet(argv, where, {**env, **(extra or {})})

    a, b = interleaved(commit(hooked), commit(plain), rounds)
    row(
        "git commit, gitxact hooks installed, no leases",
        ms(a),
        f"{ms(b)} (no hooks)",
        f"{a / b:.2f}x",
        f"+{ms(a - b)}",
    )
    alice = _lease(hooked, "alice")
    as_alice = {"GITXACT_AGENT": "alice"}
    a, b = interleaved(commit(alice, as_alice), commit(plain), rounds)
    start, _ = interleaved(lambda: _quiet([sys.executable, "-c", "pass"], plain), lambda: None, rounds)
    over = (a - b) / start
    row(
        "leased agent's hooked commit (`git commit` by its lease's agent), over no hooks",
        f"{ms(a)} (+{ms(a - b)})",
        f"{ms(b)} (no hooks); {ms(start)} python -c pass",
        f"{over:.2f} S",
        "goal <= 2 S: " + ("met" if over <= 2 else "NOT met"),
    )
    argv = ["git", "commit", "-q", "--allow-empty", "-m", "x"]
    counted = instructions(argv, alice, {**env, **as_alice})
    if counted is not None:
        bare, none = instructions([sys.executable, "-c", "pass"], plain), instructions(argv, plain, env)
        assert bare is not None
        assert none is not None
        row(
            "leased agent's hooked commit, instructions (valgrind, every process), over no hooks",
            f"{mega(counted)} (+{mega(counted - none)})",
            f"{mega(none)} (no hooks); {mega(bare)} python -c pass",
            f"{(counted - none) / bare:.2f} S",
            "goal <= 2 S: " + ("met" if counted - none <= 2 * bare else "NOT met"),
        )
    _bench_rebase(tmp, quick, plain, hooked)


def _bench_rebase(tmp: Path, quick: bool, plain: Path, hooked: Path) -> None:
    """A leased agent rebasing its branch onto ``main`` (git runs reference-transaction about
    ten times a picked commit), against the same rebase in a linked worktree without hooks,
    and one whose only hook is a reference-transaction that exits at once: git's own cost
    of running any hook, the floor under gitxact's."""
    floor = make_repo(tmp, "floor")
    hook = floor / ".git" / "hooks" / "reference-transaction"
    hook.write_text("#!/bin/sh\nexit 0\n")
    hook.chmod(0o755)
    worktrees = {"hooked": _lease(hooked, "carol")}  # a branch fresh from main, like the others
    for name, repo in (("plain", plain), ("floor", floor)):
        worktrees[name] = tmp / f"{name}.wt"
        _quiet(["git", "worktree", "add", "-q", "-b", "work", str(worktrees[name])], repo)
    mains = {"hooked": hooked, "plain": plain, "floor": floor}
    resets = {name: _rebase_ready(wt, mains[name])[1] for name, wt in worktrees.items()}
    agent = {**os.environ, **AUTHOR, "GITXACT_AGENT": "carol"}
    argv = ["git", "rebase", "-q", "main"]
    spent: dict[str, list[float]] = {name: [] for name in worktrees}
    for _ in range(5 if quick else 15):
        for name, wt in worktrees.items():
            resets[name]()
            begin = time.perf_counter()
            _quiet(argv, wt, agent)
            spent[name].append(time.perf_counter() - begin)
    med = {name: statistics.median(values) for name, values in spent.items()}
    ratio = med["hooked"] / med["plain"]
    row(
        f"{REBASED}-commit rebase in a leased worktree (by its agent), over no gitxact hooks",
        ms(med["hooked"]),
        f"{ms(med['plain'])} (no hooks); {ms(med['floor'])} with a hook that only exits",
        f"{ratio:.2f}x (floor {med['floor'] / med['plain']:.2f}x)",
        "goal <= 3x: " + ("met" if ratio <= 3 else "NOT met"),
    )
    if quick:
        return
    counts: dict[str, int] = {}
    for name, wt in worktrees.items():
        resets[name]()
        counted = instructions(argv, wt, agent)
        if counted is None:
            return
        counts[name] = counted
    ratio = counts["hooked"] / counts["plain"]
    row(
        f"{REBASED}-commit rebase in a leased worktree, instructions (valgrind, every process)",
        mega(counts["hooked"]),
        f"{mega(counts['plain'])} (no hooks); {mega(counts['floor'])} with a hook that only exits",
        f"{ratio:.2f}x (floor {counts['floor'] / counts['plain']:.2f}x)",
        "goal <= 3x: " + ("met" if ratio <= 3 else "NOT met"),
    )


def bench_writers(tmp: Path, quick: bool) -> None:
    """6 writers x 12 add+commit in one worktree: raw git loses commits, gx lands all."""
    worker = ROOT / "fixtures" / "gx_writer.py"
    results = {}
    for tool in ("git", "gx"):
        repo = make_repo(tmp, f"writers-{tool}")
        go = tmp / f"go-{tool}"
        outs = [tmp / f"{tool}-{i}.out" for i in range(6)]
        procs = [
            subprocess.Popen([sys.executable, str(worker), "writer", str(repo), f"w{i}", "12", str(out), str(go), tool])
            for i, out in enumerate(outs)
        ]
        start = time.perf_counter()
        go.write_text("")
        for proc in procs:
            proc.wait()
        took = time.perf_counter() - start
        records = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
        failed = sum(1 for r in records if r["code"] != 0)
        count = subprocess.run(["git", "rev-list", "--count", "HEAD"], cwd=repo, capture_output=True, check=True)
        fsck = subprocess.run(["git", "fsck", "--no-dangling"], cwd=repo, capture_output=True, check=False)
        landed = int(count.stdout) - 1
        health = "ok" if fsck.returncode == 0 else "BAD"
        results[tool] = f"{landed}/72 landed, {failed} failed commands, fsck {health}, {took:.1f}s"
    row(
        "6 writers x 12 add+commit, one worktree",
        f"gx: {results['gx']}",
        f"raw git: {results['git']}",
        "-",
        "goal: 72/72, 0 failed",
    )


def bench_worktrees(tmp: Path, quick: bool) -> None:
    """acquire+release against the raw git a careful person would run for the same end state:
    ``worktree add -b`` + ``worktree lock`` + ``worktree remove`` (+ ``branch -D``, since
    release deletes the merged branch too)."""
    repo = make_repo(tmp, "worktrees")
    ws = Workspace(repo)
    ws.init()
    raw_dir = tmp / "raw"
    raw_dir.mkdir()
    counter = iter(range(1_000_000))

    def raw_git() -> None:
        n = next(counter)
        path = raw_dir / f"w{n}"
        for args in (
            ["worktree", "add", "-q", "-b", f"raw/{n}", str(path), "HEAD"],
            ["worktree", "lock", "--reason", "raw", str(path)],
            ["worktree", "remove", "--force", "--force", str(path)],
            ["branch", "-q", "-D", f"raw/{n}"],
        ):
            subprocess.run(["git", *args], cwd=repo, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cli() -> None:
        out = subprocess.run(
            [*GITXACT, "worktree", "acquire", "bench", "--json"], cwd=repo, check=True, capture_output=True, text=True
        ).stdout
        token = json.loads(out)["token"]
        subprocess.run(
            [*GITXACT, "worktree", "release", "bench", "--token", token],
            cwd=repo,
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def library() -> None:
        doc = ws.worktrees.acquire("lib")
        ws.worktrees.release("lib", token=doc.token)

    imports = "import gitxact.cli.main, gitxact.cli.worktree_cmd, gitxact.workspace, gitxact.worktrees.manager"

    def startup() -> None:
        for _ in range(2):
            subprocess.run([sys.executable, "-c", imports], check=True)

    rounds = 5 if quick else 20
    a, b = interleaved(cli, raw_git, rounds)
    row(
        "`worktree acquire` + `worktree release` (2 CLI processes)",
        ms(a),
        f"{ms(b)} (git worktree add -b, lock, remove, branch -D)",
        f"{a / b:.2f}x",
        "goal <= 1.5: " + ("met" if a / b <= 1.5 else "NOT met"),
    )
    c, d = interleaved(library, raw_git, rounds)
    row(
        "ws.worktrees.acquire() + release() (in-process library)",
        ms(c),
        f"{ms(d)} (same raw git)",
        f"{c / d:.2f}x",
        "goal <= 1.5: " + ("met" if c / d <= 1.5 else "NOT met"),
    )
    e, _ = interleaved(startup, lambda: None, rounds)
    row(
        "of the CLI pair: 2 x python start-up + imports (click, pydantic, gitxact)",
        ms(e),
        f"{ms(a)} (the CLI pair above)",
        f"{e / a:.0%} of it",
        f"the rest, {ms(a - e)}, is {(a - e) / b:.2f}x raw git",
    )


def _branches(repo: Path, names: list[str]) -> None:
    """One commit per branch, each on its own file, made off ``main`` without touching the main worktree."""
    env = {**os.environ, **AUTHOR}
    for name in names:
        where = repo.parent / f"wt-{name}"
        for args in (["worktree", "add", "-q", "-b", name, str(where), "main"], ["add", "."], ["commit", "-qm", name]):
            if args[0] == "add":
                (where / f"{name}.txt").write_text(name)
            subprocess.run(["git", *args], cwd=repo if args[0] == "worktree" else where, env=env, check=True)
        subprocess.run(["git", "worktree", "remove", str(where)], cwd=repo, check=True)


def _land_queued(repo: Path, names: list[str], extra: list[str], refused: frozenset[str] = frozenset()) -> float:
    """Seconds to land *names*, all queued before the first is served (the queue held meanwhile);
    those in *refused* must be refused (exit 3), the others land."""
    from gitxact.land.records import LandingFile

    ws = Workspace(repo)
    env = {**os.environ, **AUTHOR}
    with ws.locks.resource("land.main"):
        procs = [
            subprocess.Popen(
                [*GITXACT, "land", n, "--onto", "main", "--timeout", "600", *extra],
                cwd=repo,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for n in names
        ]
        while len([r for r in LandingFile(ws).peek().requests if r.state == "pending"]) < len(names):
            time.sleep(0.02)
        start = time.perf_counter()
    codes = [proc.wait() for proc in procs]
    took = time.perf_counter() - start
    if codes != [3 if n in refused else 0 for n in names]:
        raise SystemExit(f"land failed: {dict(zip(names, codes, strict=True))}")
    return took


def _recheck_first_parents(repo: Path, since: str, check: str) -> tuple[int, int]:
    """(passed, all): *check* run again on each first-parent commit landed on main since *since*."""
    commits = subprocess.run(
        ["git", "rev-list", "--first-parent", f"{since}..main"], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.split()
    passed = 0
    for commit in commits:
        where = repo.parent / f"recheck-{commit[:10]}"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(where), commit], cwd=repo, check=True)
        passed += subprocess.run(["sh", "-c", check], cwd=where, check=False).returncode == 0
        subprocess.run(["git", "worktree", "remove", "--force", str(where)], cwd=repo, check=True)
    return passed, len(commits)


def bench_land_parallel(tmp: Path, quick: bool) -> None:
    """The speculative queue: 8 branches with a ~2 s check, ``--parallel 4`` against serial,
    then the same with one failing branch (refused; the candidates after it rebuilt)."""
    count, pause = (4, 0.5) if quick else (8, 2.0)
    names = [f"b{i}" for i in range(count)]
    bad = names[count // 2 - 1]
    took: dict[str, float] = {}
    rechecked = (0, 0)
    for failing in (False, True):
        for mode, extra in (("serial", []), ("parallel", ["--parallel", "4"])):
            repo = make_repo(tmp, f"land-{mode}-{'fail' if failing else 'pass'}")
            _branches(repo, names)
            since = subprocess.run(
                ["git", "rev-parse", "main"], cwd=repo, capture_output=True, text=True, check=True
            ).stdout
            check = f"sleep {pause}; test ! -f {bad}.txt" if failing else f"sleep {pause}"
            refused = frozenset({bad}) if failing else frozenset()
            took[f"{mode}-{failing}"] = _land_queued(repo, names, [*extra, "--shell", "--check", check], refused)
            if failing and mode == "parallel":
                rechecked = _recheck_first_parents(repo, since.strip(), f"test ! -f {bad}.txt")
    for failing, goal in ((False, 0.35), (True, 0.5)):
        ratio = took[f"parallel-{failing}"] / took[f"serial-{failing}"]
        what = f"land {count} branches, check ~{pause:g} s" + (", one failing" if failing else "")
        note = f"; {rechecked[0]}/{rechecked[1]} landed first-parent commits re-checked pass" if failing else ""
        row(
            what,
            f"--parallel 4: {took[f'parallel-{failing}']:.1f} s",
            f"serial: {took[f'serial-{failing}']:.1f} s",
            f"{ratio:.2f}x",
            f"goal: <= {goal}x: " + ("met" if ratio <= goal else "NOT met") + note,
        )


def bench_land(tmp: Path, quick: bool) -> None:
    """The landing queue: 8 branches with a ~2 s check, serial vs ``--batch 4``; and one land
    through the queue against the bare fetch + rebase + push an agent would otherwise run."""
    count, pause = (4, 0.5) if quick else (8, 2.0)
    names = [f"b{i}" for i in range(count)]
    took = {}
    for mode, extra in (("serial", []), ("batch", ["--batch", "4"])):
        repo = make_repo(tmp, f"land-{mode}")
        _branches(repo, names)
        took[mode] = _land_queued(repo, names, [*extra, "--check", f"sleep {pause}"])
    row(
        f"land {count} branches, check ~{pause:g} s",
        f"--batch 4: {took['batch']:.1f} s",
        f"serial: {took['serial']:.1f} s",
        f"{took['batch'] / took['serial']:.2f}x",
        "goal: <= 0.5x",
    )
    seed = make_repo(tmp, "land-seed")
    bare = tmp / "land-remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    clone = tmp / "land-clone"
    subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
    env = {**os.environ, **AUTHOR}
    ws = Workspace(clone)
    ws.init()
    counter = iter(range(1_000_000))

    def branch() -> str:
        name = f"r{next(counter)}"
        subprocess.run(["git", "fetch", "-q", "origin"], cwd=clone, check=True)
        subprocess.run(["git", "checkout", "-q", "-b", name, "origin/main"], cwd=clone, check=True)
        (clone / f"{name}.txt").write_text(name)
        subprocess.run(["git", "add", "."], cwd=clone, check=True)
        subprocess.run(["git", "commit", "-qm", name], cwd=clone, env=env, check=True)
        subprocess.run(["git", "checkout", "-q", "--detach"], cwd=clone, check=True)
        # main moves on after the branch was made, so both ways have a real rebase to do
        moved = subprocess.run(
            ["git", "commit-tree", "origin/main^{tree}", "-p", "origin/main", "-m", "elsewhere"],
            cwd=clone,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        subprocess.run(["git", "push", "-q", "origin", f"{moved}:refs/heads/main"], cwd=clone, check=True)
        return name

    def by_hand(name: str) -> None:  # what an agent runs without the queue: fetch, rebase, push
        subprocess.run(["git", "checkout", "-q", name], cwd=clone, check=True)
        for args in (
            ["fetch", "-q", "origin", "main"],
            ["rebase", "-q", "FETCH_HEAD"],
            ["push", "-q", "origin", "HEAD:main"],
        ):
            subprocess.run(["git", *args], cwd=clone, env=env, check=True, capture_output=True)

    queued: list[float] = []
    manual: list[float] = []
    for _ in range(2 if quick else 6):  # interleaved, the branch made outside the timing
        name = branch()
        start = time.perf_counter()
        ws.land(name, onto="main", remote="origin")
        queued.append(time.perf_counter() - start)
        name = branch()
        start = time.perf_counter()
        by_hand(name)
        manual.append(time.perf_counter() - start)
        subprocess.run(["git", "checkout", "-q", "--detach"], cwd=clone, check=True)
    a, b = statistics.median(queued), statistics.median(manual)
    row(
        "one land onto a remote, no check (ws.land)",
        ms(a),
        f"{ms(b)} (fetch + rebase + push)",
        f"{a / b:.1f}x",
        "goal: <= 1.3x",
    )


def make_big_repo(root: Path, files: int = 10_000) -> Path:
    """A repository with *files* small tracked files in 100 folders (one commit), index warm."""
    repo = make_repo(root, "big", files=files)
    subprocess.run(["git", "status", "-s"], cwd=repo, check=True, stdout=subprocess.DEVNULL)  # warm the index
    return repo


def bench_transactions(tmp: Path, quick: bool) -> None:
    """``tx begin`` + ``tx rollback`` on 10k (and, full runs, 50k) files vs ``git stash create`` + ``reset --hard``."""
    for files in (10_000,) if quick else (10_000, 50_000):
        _bench_transactions(tmp / f"tx{files}", quick, files)


def _bench_transactions(tmp: Path, quick: bool, files: int) -> None:
    """``tx begin`` + ``tx rollback`` on *files* files vs ``git stash create`` + ``git reset --hard``.

    Each round starts from the same dirty state (3 modified files, 1 staged, 1
    untracked), then "works" (more edits, a new file) between save and restore; only
    the save and the restore are timed. The baseline does less than gitxact: stash
    create ignores untracked files and reset --hard neither restores the saved state
    nor removes new files, so the ratio is an upper bound on gitxact's overhead.
    """
    tmp.mkdir()
    repo = make_big_repo(tmp, files)
    ws = Workspace(repo)
    ws.init()
    git = ["git", "-C", str(repo)]

    def dirty(round_: int) -> None:
        for i in range(3):
            (repo / f"d{i:02d}" / f"f{i:05d}.txt").write_text(f"edited in round {round_}\n")
        (repo / "d50" / "f00050.txt").write_text(f"staged {round_}\n")
        subprocess.run([*git, "add", "d50/f00050.txt"], check=True)
        (repo / "untracked.txt").write_text("wip\n")

    def work() -> None:
        (repo / "d07" / "f00007.txt").write_text("work\n")
        (repo / "new-file.txt").write_text("new\n")

    def settle() -> None:  # the same clean start for every round, untimed
        subprocess.run([*git, "reset", "-q", "--hard"], check=True)
        subprocess.run([*git, "clean", "-qfd"], check=True)

    def lib_tx() -> float:
        start = time.perf_counter()
        ws.transactions.begin()
        mid = time.perf_counter()
        work()
        again = time.perf_counter()
        ws.transactions.rollback()
        return (mid - start) + (time.perf_counter() - again)

    def cli_tx() -> float:
        start = time.perf_counter()
        subprocess.run([*GITXACT, "-C", str(repo), "tx", "begin"], check=True, stdout=subprocess.DEVNULL)
        mid = time.perf_counter()
        work()
        again = time.perf_counter()
        subprocess.run([*GITXACT, "-C", str(repo), "tx", "rollback"], check=True, stdout=subprocess.DEVNULL)
        return (mid - start) + (time.perf_counter() - again)

    def raw() -> float:
        start = time.perf_counter()
        subprocess.run([*git, "stash", "create"], check=True, stdout=subprocess.DEVNULL)
        mid = time.perf_counter()
        work()
        again = time.perf_counter()
        subprocess.run([*git, "reset", "-q", "--hard"], check=True)
        return (mid - start) + (time.perf_counter() - again)

    rounds = 5 if quick else 15
    for label, ours in (("library calls", lib_tx), ("CLI processes", cli_tx)):
        times_ours: list[float] = []
        times_raw: list[float] = []
        for round_ in range(rounds):
            settle()
            dirty(round_)
            times_ours.append(ours())
            settle()
            dirty(round_)
            times_raw.append(raw())
        a, b = statistics.median(times_ours), statistics.median(times_raw)
        goal = 1.5 if label.startswith("CLI") else 2.0  # issue 14 asks the CLI for 1.5x (at 50k files)
        row(
            f"tx begin + rollback, {files // 1000}k files ({label})",
            ms(a),
            f"{ms(b)} (git stash create + git reset --hard)",
            f"{a / b:.1f}x",
            f"goal <= {goal:g}x: " + ("met" if a <= goal * b else "NOT met"),
        )


def bench_demo(tmp: Path, quick: bool) -> None:
    """The whole demo (4 agents: leases, TDD, commits, counter, a kill and recover) vs its raw-git twin."""

    def demo(*extra: str) -> Callable[[], None]:
        return lambda: _quiet([*GITXACT_SCRIPT, "demo", "--agents", "4", "--json", *extra], tmp)

    a, b = interleaved(demo(), demo("--raw"), 2 if quick else 5)
    row(
        "`gitxact demo` (4 agents) over `gitxact demo --raw`",
        f"{a:.2f} s",
        f"{b:.2f} s (--raw)",
        f"{a / b:.1f}x",
        "goal <= 4x: " + ("met" if a <= 4 * b else "NOT met"),
    )


_PG_INCR_WORKER = """
import sys
from gitxact import Workspace
tracker = Workspace(sys.argv[1]).tracker
for _ in range(int(sys.argv[2])):
    tracker.incr("fleet")
"""

_PG_LOCK_WORKER = """
import sys, time
from gitxact import Workspace
from gitxact.backends.named import open_named_locks
locks = open_named_locks(Workspace(sys.argv[1]))
name, until = sys.argv[2], float(sys.argv[3])
while time.time() < until:  # warm-up: the session is open, the statements prepared
    with locks.hold(name, timeout=60):
        pass
    break
count, end = 0, until + float(sys.argv[4])
while time.time() < until:
    time.sleep(0.001)
while time.time() < end:
    with locks.hold(name, timeout=60):
        count += 1
print(count)
"""


def bench_postgres(tmp: Path, quick: bool) -> None:
    """The PostgreSQL backend against the files, on a private server started here (issue 17)."""
    try:
        import psycopg  # noqa: F401

        from fixtures.postgres import start_server
    except ImportError:
        print("  skipped: psycopg is not installed (pip install '.[postgresql]')", file=sys.stderr)
        return
    try:
        server = start_server(durable=True)  # fsync on, like the file backend
    except (FileNotFoundError, RuntimeError) as exc:
        print(f"  skipped: no PostgreSQL server could be started here ({exc})", file=sys.stderr)
        return
    try:
        _bench_postgres(tmp, quick, server.dsn)
    finally:
        server.remove()


def _bench_postgres(tmp: Path, quick: bool, dsn: str) -> None:
    from gitxact.backends.admin import select_backend
    from gitxact.backends.named import open_named_locks

    files_repo = make_repo(tmp, "files")
    files_ws = Workspace(files_repo)
    files_ws.init()
    pg_repo = make_repo(tmp, "pg")
    pg_ws = Workspace(pg_repo)
    pg_ws.init()
    select_backend(pg_ws, dsn)
    pg_ws = Workspace(pg_repo)  # settings read again: now on PostgreSQL
    rounds = 200 if quick else 1000

    pg_locks, file_locks = open_named_locks(pg_ws), open_named_locks(files_ws)

    def pg_lock() -> None:
        with pg_locks.hold("bench"):
            pass

    def file_lock() -> None:
        with file_locks.hold("bench"):
            pass

    a, b = interleaved(pg_lock, file_lock, rounds)
    row("named lock acquire+release: PostgreSQL (Unix socket)", ms(a), f"{ms(b)} (files)", f"{a / b:.2f}x")
    pg_locks.close()

    def pg_incr() -> None:
        pg_ws.tracker.incr("n")

    def file_incr() -> None:
        files_ws.tracker.incr("n")

    a, b = interleaved(pg_incr, file_incr, rounds)
    row("tracker.incr() in-process: PostgreSQL", ms(a), f"{ms(b)} (files: lock + fsync'd write)", f"{a / b:.2f}x")

    def cli(repo: Path) -> Callable[[], None]:
        return lambda: subprocess.run([*GITXACT_SCRIPT, "tracker", "incr", "c"], cwd=repo, check=True, stdout=-3)

    a, b = interleaved(cli(pg_repo), cli(files_repo), 10 if quick else 30)
    row("`gitxact tracker incr` (process): PostgreSQL", ms(a), f"{ms(b)} (files)", f"{a / b:.1f}x")

    procs, each = 16, 25
    started = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-c", _PG_INCR_WORKER, str(pg_repo), str(each)], cwd=pg_repo)
        for _ in range(procs)
    ]
    codes = [w.wait() for w in workers]
    took = time.perf_counter() - started
    kept = pg_ws.tracker.get("fleet")["fleet"].value
    row(
        f"{procs} processes x {each} tracker.incr() through PostgreSQL",
        f"{kept}/{procs * each} kept in {took:.1f}s",
        "-",
        "-",
        "goal: all kept: " + ("met" if kept == procs * each and not any(codes) else "NOT met"),
    )

    seconds = 2.0 if quick else 5.0
    for label, names in (("distinct names", [f"own-{i}" for i in range(8)]), ("one name", ["shared"] * 8)):
        begin = time.time() + 3.0  # every worker connected and warmed up by then
        lockers = [
            subprocess.Popen(
                [sys.executable, "-c", _PG_LOCK_WORKER, str(pg_repo), name, str(begin), str(seconds)],
                cwd=pg_repo,
                stdout=subprocess.PIPE,
                text=True,
            )
            for name in names
        ]
        total = sum(int(w.communicate()[0] or 0) for w in lockers)
        row(
            f"named lock acquire+release per second, 8 processes, {label}: PostgreSQL",
            f"{total / seconds:.0f}/s",
            "-",
            "-",
        )
    each = 2 if quick else 4
    took_pg, landed_pg, retries_pg = _land_fleet(tmp / "fleet-pg", dsn, each)
    took_files, landed_files, retries_files = _land_fleet(tmp / "fleet-files", None, each)
    total = 3 * each
    row(
        f"landing from 3 clones x {each} branches onto one remote, all at once",
        f"database queue: {took_pg:.1f} s, {landed_pg}/{total} landed, {retries_pg} rebuilt",
        f"files (compare-and-swap retries): {took_files:.1f} s, {landed_files}/{total} landed, {retries_files} rebuilt",
        f"{took_pg / took_files:.2f}x",
    )


def _land_fleet(root: Path, dsn: str | None, each: int) -> tuple[float, int, int]:
    """3 clones (3 host identities) land *each* branches at once onto one bare remote, on
    PostgreSQL (*dsn*) or on files; the wall time, how many landed, how many candidates were
    built again because the remote moved under them (attempts beyond the first)."""
    from gitxact.backends.admin import select_backend

    root.mkdir()
    seed = make_repo(root, "seed")
    bare = root / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(seed), str(bare)], check=True)
    env = {**os.environ, **AUTHOR}
    commands: list[tuple[list[str], dict[str, str]]] = []
    for h in range(1, 4):
        clone = root / f"host-{h}"
        subprocess.run(["git", "clone", "-q", str(bare), str(clone)], check=True)
        subprocess.run(["git", "config", "gitxact.namespace", f"bench-{root.name}"], cwd=clone, check=True)
        ws = Workspace(clone)
        ws.init()
        if dsn is not None:
            select_backend(ws, dsn)
        for k in range(each):
            name = f"h{h}-{k}"
            subprocess.run(["git", "checkout", "-q", "-b", name, "origin/main"], cwd=clone, check=True)
            (clone / f"{name}.txt").write_text(name)
            subprocess.run(["git", "add", "."], cwd=clone, check=True)
            subprocess.run(["git", "commit", "-qm", name], cwd=clone, env=env, check=True)
            argv = [*GITXACT_SCRIPT, "-C", str(clone), "land", name, "--onto", "main", "--remote", "origin"]
            argv += ["--retries", "50", "--timeout", "600", "--json"]
            commands.append((argv, {**env, "GITXACT_TEST_HOST": f"host-{h}"}))
        subprocess.run(["git", "checkout", "-q", "--detach"], cwd=clone, check=True)
    start = time.perf_counter()
    procs = [
        subprocess.Popen(argv, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for argv, e in commands
    ]
    outputs = [p.communicate() for p in procs]
    took = time.perf_counter() - start
    docs = [json.loads(out) for out, _err in outputs if out.strip()]
    landed = sum(1 for d in docs if d.get("state") == "landed")
    rebuilt = sum(max(0, int(d.get("attempts", 1)) - 1) for d in docs if d.get("state") == "landed")
    return took, landed, rebuilt


def _lock_records(repo: Path) -> list[dict[str, object]]:
    """The hold/wait records gitxact's locks wrote for *repo* (its ``lock`` events)."""
    return list(Workspace(repo).locks.stats())


def _at_once(
    commands: list[list[str]], cwd: Path, meanwhile: Callable[[], None] | None = None
) -> tuple[float, list[subprocess.CompletedProcess[str]]]:
    """Start every command at once (and *meanwhile*, 50 ms in); the wall time until the last
    command ended, and how each ended."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    if meanwhile is not None:
        time.sleep(0.05)
        meanwhile()
    done = []
    for proc in procs:
        out, err = proc.communicate()
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return time.perf_counter() - start, done


def _all_ok(done: list[subprocess.CompletedProcess[str]]) -> list[str]:
    for proc in done:
        if proc.returncode != 0:
            raise RuntimeError(f"{proc.args} failed ({proc.returncode}): {proc.stderr}")
    return [proc.stdout for proc in done]


#: A leasing call in a process that has started and imported everything before the go: what
#: gitxact's acquire or release itself costs, without the Python start-up of a CLI process.
_READY = """
import os, pathlib, sys, time
from gitxact import Workspace
repo, go, verb, agent, arg = sys.argv[1:6]
ws = Workspace(repo)
ws.worktrees.list
pathlib.Path(go + ".ready." + agent).touch()
while not os.path.exists(go):
    time.sleep(0.001)
if verb == "acquire":
    print(ws.worktrees.acquire(agent, owner_pid=int(arg)).token)
else:
    ws.worktrees.release(agent, token=arg)
"""


def _ready_at_once(repo: Path, go: Path, verb: str, args: list[tuple[str, str]]) -> tuple[float, list[str]]:
    """Start one ready process per (agent, arg), wait until all imported, then time them from the go."""
    go.unlink(missing_ok=True)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _READY, str(repo), str(go), verb, agent, arg],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for agent, arg in args
    ]
    while not all(Path(f"{go}.ready.{agent}").exists() for agent, _ in args):
        time.sleep(0.005)
    start = time.perf_counter()
    go.touch()
    outs = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{verb} failed ({proc.returncode}): {err}")
        outs.append(out.strip())
    took = time.perf_counter() - start
    for agent, _ in args:
        Path(f"{go}.ready.{agent}").unlink()
    return took, outs


def bench_fleet(tmp: Path, quick: bool) -> None:
    """8 ``worktree acquire`` at once (then 8 ``release``) via the CLI on a 10,000-file repository,
    against 8 plain ``git worktree add -b`` at once (then 8 ``git worktree remove``). Meanwhile a
    ``gx commit --allow-empty`` in the main worktree: how long it took, and how long it waited
    for its lock (from gitxact's own lock records), during each. Plain git is not safe to run
    so: an add that fails (it may read another's half-written admin folder) is counted, and
    its worktree is not removed (nor timed).

    One batch of 8 checkouts writes 80,000 files, and the kernel writes them back to disk
    while whatever comes next runs: measured once, the ratio swung from 1.08x to 2.76x with
    the order. So every batch starts after ``sync`` (untimed), the rounds alternate which
    side goes first, and the figures are medians of several rounds, the ratio the median of
    each round's own ratio (its spread is printed too)."""
    repo = make_big_repo(tmp)
    Workspace(repo).init()
    gx = [*_gx_argv(), "commit", "-q", "--allow-empty", "-m", "during"]
    raw_root = tmp / "raw-worktrees"
    raw_root.mkdir()
    rounds = 3 if quick else 7
    n = 8
    times: dict[str, list[float]] = {
        k: [] for k in ("acquire", "release", "add", "remove", "ready acquire", "ready release")
    }
    commit: dict[str, list[float]] = {"gitxact": [], "git": []}
    waited: list[float] = []
    raw_failed = 0
    owner = str(os.getpid())

    def commit_in_main(label: str) -> Callable[[], None]:
        def run() -> None:
            begun = time.perf_counter()
            committer = subprocess.Popen(gx, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            committer.wait()
            commit[label].append(time.perf_counter() - begun)
            mine = [r for r in _lock_records(repo) if r.get("pid") == committer.pid]
            if label == "gitxact":
                waited.append(max((float(str(r.get("wait", 0))) for r in mine), default=0.0))

        return run

    def settled(batch: Callable[[], float]) -> float:
        """*batch*'s time, started with the previous batch's files on disk (untimed ``sync``)."""
        os.sync()
        return batch()

    def ours(r: int) -> None:
        agents = [f"ready-{r}-{i}" for i in range(n)]
        os.sync()
        took, tokens = _ready_at_once(repo, tmp / "go", "acquire", [(a, owner) for a in agents])
        times["ready acquire"].append(took)
        os.sync()
        took, _ = _ready_at_once(repo, tmp / "go", "release", list(zip(agents, tokens, strict=True)))
        times["ready release"].append(took)
        agents = [f"fleet-{r}-{i}" for i in range(n)]
        acquire = [[*GITXACT, "worktree", "acquire", a, "--json", "--owner-pid", owner] for a in agents]
        outs: list[str] = []

        def acquire_all() -> float:
            took, done = _at_once(acquire, repo, commit_in_main("gitxact"))
            outs.extend(_all_ok(done))
            return took

        times["acquire"].append(settled(acquire_all))
        tokens = [json.loads(out)["token"] for out in outs]
        release = [[*GITXACT, "worktree", "release", a, "--token", t] for a, t in zip(agents, tokens, strict=True)]

        def release_all() -> float:
            took, done = _at_once(release, repo)
            _all_ok(done)
            return took

        times["release"].append(settled(release_all))

    def raw(r: int) -> None:
        nonlocal raw_failed
        paths = [str(raw_root / f"raw-{r}-{i}") for i in range(n)]
        add = [["git", "worktree", "add", "-q", "-b", f"raw-{r}-{i}", p, "HEAD"] for i, p in enumerate(paths)]
        made: list[str] = []

        def add_all() -> float:
            took, done = _at_once(add, repo, commit_in_main("git"))
            made.extend(p for p, proc in zip(paths, done, strict=True) if proc.returncode == 0)
            return took

        times["add"].append(settled(add_all))
        raw_failed += n - len(made)

        def remove_all() -> float:
            took, done = _at_once([["git", "worktree", "remove", p] for p in made], repo)
            _all_ok(done)
            return took

        times["remove"].append(settled(remove_all))
        for p in paths:  # what a failed add left, untimed
            subprocess.run(["git", "worktree", "remove", "-f", "-f", p], cwd=repo, capture_output=True, check=False)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True)
        subprocess.run(["git", "branch", "-q", "-D", *[f"raw-{r}-{i}" for i in range(n)]], cwd=repo, check=False)

    for r in range(rounds):
        for side in (ours, raw) if r % 2 == 0 else (raw, ours):
            side(r)
    med = {k: statistics.median(v) for k, v in times.items()}
    failed = f"; {raw_failed} of {n * rounds} adds failed" if raw_failed else ""

    def spread(a: str, b: str) -> tuple[float, str]:
        """The median of the rounds' own ratios, and their range."""
        per_round = [x / y for x, y in zip(times[a], times[b], strict=True)]
        return statistics.median(per_round), f"{min(per_round):.2f}x-{max(per_round):.2f}x over {rounds} rounds"

    for mine, theirs, what in (("acquire", "add", "git worktree add -b"), ("release", "remove", "git worktree remove")):
        ratio, between = spread(mine, theirs)
        row(
            f"{n} `worktree {mine}` at once, 10k files (CLI)",
            ms(med[mine]),
            f"{ms(med[theirs])} ({n} x {what} at once{failed if mine == 'acquire' else ''})",
            f"{ratio:.2f}x ({between})",
            "goal <= 1.3x: " + ("met" if ratio <= 1.3 else "NOT met"),
        )
    for mine, theirs, what in (("acquire", "add", "git worktree add -b"), ("release", "remove", "git worktree remove")):
        ratio, between = spread(f"ready {mine}", theirs)
        row(
            f"{n} `{mine}` at once, 10k files, Python start-up excluded (library, processes ready before the go)",
            ms(med[f"ready {mine}"]),
            f"{ms(med[theirs])} ({n} x {what} at once)",
            f"{ratio:.2f}x ({between})",
        )
    per_round = [
        (a + b) / (c + d)
        for a, b, c, d in zip(times["acquire"], times["release"], times["add"], times["remove"], strict=True)
    ]
    both = statistics.median(per_round)
    row(
        f"{n} acquires then {n} releases, 10k files (CLI)",
        ms(med["acquire"] + med["release"]),
        f"{ms(med['add'] + med['remove'])} (plain git{failed})",
        f"{both:.2f}x ({min(per_round):.2f}x-{max(per_round):.2f}x over {rounds} rounds)",
        "goal <= 1.3x: " + ("met" if both <= 1.3 else "NOT met"),
    )
    a, b = statistics.median(commit["gitxact"]), statistics.median(commit["git"])
    row(
        f"`gx commit` in main during the {n} acquires",
        f"{ms(a)} (waited {ms(statistics.median(waited))} for its lock)",
        f"{ms(b)} (during {n} plain git worktree add)",
        f"{a / b:.2f}x",
    )


def _runner(argv: list[str], cwd: Path) -> Callable[[], None]:
    return lambda: _quiet(argv, cwd)


def bench_lease_scaling(tmp: Path, quick: bool) -> None:
    """What one more lease costs: acquire's repository-lock hold, ``status`` and ``worktree list``
    (and ``worktree list --dirty``, a ``git status`` per lease), at 100 leases against 1 lease."""
    one = make_repo(tmp, "one")
    hundred = make_repo(tmp, "hundred")
    owner = os.getpid()
    for repo, count in ((one, 1), (hundred, 100)):
        ws = Workspace(repo)
        ws.init()
        for i in range(count):
            ws.worktrees.acquire(f"held-{i}", owner_pid=owner)

    def hold(repo: Path) -> tuple[float, float]:
        """Repository-lock hold of one library acquire and of its release."""
        ws = Workspace(repo)

        def held() -> list[float]:
            mine = [r for r in _lock_records(repo) if r.get("pid") == os.getpid() and r.get("lock") == "repo"]
            return [float(str(r["hold"])) for r in mine]

        before = len(held())
        doc = ws.worktrees.acquire("probe", owner_pid=owner)
        middle = len(held())
        ws.worktrees.release("probe", token=doc.token)
        holds = held()
        return sum(holds[before:middle]), sum(holds[middle:])

    rounds = 5 if quick else 15
    at: dict[int, list[tuple[float, float]]] = {1: [], 100: []}
    for _ in range(rounds):
        at[1].append(hold(one))
        at[100].append(hold(hundred))
    for index, what in ((0, "acquire"), (1, "release")):
        a = statistics.median(h[index] for h in at[100])
        b = statistics.median(h[index] for h in at[1])
        row(
            f"repository lock held by one {what}, 100 leases vs 1",
            ms(a),
            f"{ms(b)} (1 lease)",
            f"{a / b:.2f}x",
            "goal <= 1.2x: " + ("met" if a / b <= 1.2 else "NOT met"),
        )
    _git_floor(tmp, rounds)
    # The tables leave dirty/clean to --dirty (one git status per lease): its cost is shown, no goal.
    for command in (["status"], ["worktree", "list"], ["worktree", "list", "--dirty"]):
        runs = {
            "pass": _runner([sys.executable, "-c", "pass"], one),
            "one": _runner([*GITXACT, *command], one),
            "hundred": _runner([*GITXACT, *command], hundred),
        }
        spent: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(rounds):
            for name, job in runs.items():
                start = time.perf_counter()
                job()
                spent[name].append(time.perf_counter() - start)
        med = {name: statistics.median(values) for name, values in spent.items()}
        over = (med["hundred"] - med["one"]) / med["pass"]
        row(
            f"`gitxact {' '.join(command)}` at 100 leases over 1 lease, in bare Python start-ups",
            f"{ms(med['hundred'])} (+{ms(med['hundred'] - med['one'])})",
            f"{ms(med['one'])} at 1 lease; {ms(med['pass'])} python -c pass",
            f"{over:.2f} S",
            "" if "--dirty" in command else "goal <= 3 S: " + ("met" if over <= 3 else "NOT met"),
        )


def _git_floor(tmp: Path, rounds: int, many: int = 100) -> None:
    """git's own share of those holds: ``git worktree add --no-checkout --lock -b`` (what acquire
    runs under the repository lock) and ``git worktree remove --force --force`` (release), in a
    repository with *many* worktrees against one with 1. git reads every worktree's admin folder
    (is the branch checked out elsewhere? is the path taken?), so this grows without gitxact."""
    spent: dict[tuple[int, str], list[float]] = {}
    repos: dict[int, Path] = {}
    for count in (1, many):
        repo = make_repo(tmp, f"raw-{count}")
        for i in range(count):
            _quiet(
                ["git", "worktree", "add", "-q", "--lock", "-b", f"w{i}", str(tmp / f"raw-{count}.wt" / f"w{i}")], repo
            )
        repos[count] = repo
    for r in range(rounds):
        for count, repo in repos.items():
            path = str(tmp / f"raw-{count}.wt" / f"probe-{r}")
            for what, argv in (
                ("add", ["git", "worktree", "add", "-q", "--no-checkout", "--lock", "-b", f"probe-{r}", path, "HEAD"]),
                ("remove", ["git", "worktree", "remove", "--force", "--force", path]),
            ):
                start = time.perf_counter()
                _quiet(argv, repo)
                spent.setdefault((count, what), []).append(time.perf_counter() - start)
    for what in ("add", "remove"):
        a, b = statistics.median(spent[(many, what)]), statistics.median(spent[(1, what)])
        row(
            f"git's own `worktree {what}` (no gitxact), {many:,} worktrees vs 1: the floor under that hold",
            ms(a),
            f"{ms(b)} (1 worktree)",
            f"{a / b:.2f}x",
        )


def bench_foresight(tmp: Path, quick: bool) -> None:
    """``gitxact conflicts`` at 20 leases on 10,000 files against the loop a user scripts:
    one ``git merge-tree`` per branch and per pair, one after another (issue 28: <= 2 s)."""
    repo = make_big_repo(tmp)
    ws = Workspace(repo)
    ws.init()
    agents = [f"a{i}" for i in range(20)]
    branches = []
    for i, agent in enumerate(agents):
        path = Path(ws.worktrees.acquire(agent, base="main", owner_pid=os.getpid()).path)
        touched = sorted(p for p in path.glob("d*/f*") if p.is_file())[: 2 + i % 3]
        for file in (*touched[i % 2 :], path / "shared.txt" if i % 5 == 0 else path / f"own-{i}.txt"):
            file.write_text(f"{agent}\n")
        subprocess.run(["git", "add", "-A"], cwd=path, check=True, env={**os.environ, **AUTHOR}, stderr=sys.stderr)
        subprocess.run(["git", "commit", "-qm", agent], cwd=path, check=True, env={**os.environ, **AUTHOR})
        branches.append(f"gitxact/{agent}")
    pairs = [("main", b) for b in branches] + [(a, b) for n, a in enumerate(branches) for b in branches[n + 1 :]]

    def ours() -> None:
        _quiet([*GITXACT_SCRIPT, "conflicts", "--onto", "main", "--json"], repo)

    def raw() -> None:
        for a, b in pairs:
            subprocess.run(
                ["git", "merge-tree", "--write-tree", "--name-only", a, b],
                cwd=repo,
                stdout=subprocess.DEVNULL,
                check=False,  # 1: the pair conflicts, which is an answer
            )

    mine, theirs = interleaved(ours, raw, 3 if quick else 7)
    verdict = "met" if mine <= 2.0 else "NOT met"
    row(
        f"conflicts: 20 leases ({len(pairs) - len(branches)} pairs + {len(branches)} vs main), 10,000 files",
        ms(mine),
        f"{ms(theirs)} (git merge-tree, one per pair, in turn)",
        f"{mine / theirs:.2f}x",
        f"goal <= 2 s: {verdict}",
    )


def bench_sparse(tmp: Path, quick: bool) -> None:
    """A sparse acquire of 1% of the paths (one of the 100 folders) against a full one, on a
    100,000-file repository (10,000 with --quick), both through the library, interleaved."""
    files = SIZES.get("files", 10_000 if quick else 100_000)
    repo = make_repo(tmp, "mono", files=files)
    Workspace(repo).init()
    _bench_sparse(repo, files, quick)


def _bench_sparse(repo: Path, files: int, quick: bool) -> None:
    ws = Workspace(repo)
    counter = iter(range(1_000_000))

    def acquire(sparse: tuple[str, ...]) -> Callable[[], None]:
        def run() -> None:
            agent = f"s{next(counter)}"
            start = time.perf_counter()
            doc = ws.worktrees.acquire(agent, sparse=sparse)
            spent.setdefault(sparse, []).append(time.perf_counter() - start)
            ws.worktrees.release(agent, token=doc.token)
            _trash_settled(repo.parent / f"{repo.name}.worktrees")

        return run

    spent: dict[tuple[str, ...], list[float]] = {}
    interleaved(acquire(("d00",)), acquire(()), 3 if quick else 5)
    a, b = statistics.median(spent[("d00",)]), statistics.median(spent[()])
    row(
        f"sparse acquire of 1% of the paths (--sparse d00), {files:,} files",
        ms(a),
        f"{ms(b)} (a full acquire)",
        f"{a / b:.3f}x",
        "goal <= 0.05: " + ("met" if a / b <= 0.05 else "NOT met"),
    )


def _trash_settled(root: Path) -> None:
    """Wait (untimed, bounded) until the detached deleters of releases emptied the trash, so
    one round's deletion does not run into the next round's figures."""
    from gitxact.worktrees import trash

    deadline = time.monotonic() + 300
    while trash.entries(root) and time.monotonic() < deadline:
        time.sleep(0.02)


def bench_scale(tmp: Path, quick: bool) -> None:
    """Issue 27's scale figures on a generated 100,000-file repository (10,000 with --quick):
    a full acquire against ``git worktree add``, a release against ``git worktree remove``
    (its files renamed into gitxact's trash, deleted by a detached process after it returns),
    8 acquires at once against 8 plain adds at once; then an acquire among 1,000 leases
    (100 with --quick) against one beside 1 lease, in a small repository."""
    files = SIZES.get("files", 10_000 if quick else 100_000)
    repo = make_repo(tmp, "mono", files=files)
    ws = Workspace(repo)
    ws.init()
    owner = os.getpid()
    root = repo.parent / "mono.worktrees"
    plain = tmp / "plain"
    counter = iter(range(1_000_000))
    spent: dict[str, list[float]] = {}

    def timed(name: str, job: Callable[[], object]) -> None:
        # The previous step's dirty pages written back first (untimed): on a shared disk the
        # writeback of one round's 100,000 files otherwise lands in whichever step comes next.
        os.sync()
        start = time.perf_counter()
        job()
        spent.setdefault(name, []).append(time.perf_counter() - start)

    def ours() -> None:
        agent = f"f{next(counter)}"
        docs = []
        timed("acquire", lambda: docs.append(ws.worktrees.acquire(agent, owner_pid=owner)))
        timed("release", lambda: ws.worktrees.release(agent, token=docs[0].token))
        _trash_settled(root)

    def raw() -> None:
        path = str(plain / f"p{next(counter)}")
        timed("add", lambda: _quiet(["git", "worktree", "add", "-q", "-b", Path(path).name, path, "HEAD"], repo))
        timed("remove", lambda: _quiet(["git", "worktree", "remove", "--force", path], repo))

    interleaved(ours, raw, 3 if quick else 5)
    med = {name: statistics.median(values) for name, values in spent.items()}
    for figure, a, b, goal in (
        ("full acquire", "acquire", "add", 1.1),
        ("release (its files deleted after it returns)", "release", "remove", 1.0),
    ):
        ratio = med[a] / med[b]
        row(
            f"{figure}, {files:,} files (library)",
            ms(med[a]),
            f"{ms(med[b])} (git worktree {b})",
            f"{ratio:.2f}x",
            f"goal <= {goal:g}x: " + ("met" if ratio <= goal else "NOT met"),
        )
    go = tmp / "go"
    eight: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(1 if quick else 3):
        agents = [f"e{next(counter)}" for _ in range(8)]
        os.sync()
        took, tokens = _ready_at_once(repo, go, "acquire", [(agent, str(owner)) for agent in agents])
        eight["ours"].append(took)
        for agent, token in zip(agents, tokens, strict=True):
            ws.worktrees.release(agent, token=token)
        _trash_settled(root)
        paths = [str(plain / f"q{next(counter)}") for _ in range(8)]
        os.sync()
        took, done = _at_once([["git", "worktree", "add", "-q", "-b", Path(p).name, p, "HEAD"] for p in paths], repo)
        _all_ok(done)
        eight["raw"].append(took)
        for path in paths:
            _quiet(["git", "worktree", "remove", "--force", path], repo)
    a, b = statistics.median(eight["ours"]), statistics.median(eight["raw"])
    row(
        f"8 acquires at once, {files:,} files (library, each in its own process)",
        ms(a),
        f"{ms(b)} (8 git worktree add at once)",
        f"{a / b:.2f}x",
        "goal <= 1.3x: " + ("met" if a / b <= 1.3 else "NOT met"),
    )
    _bench_sparse(repo, files, quick)
    _bench_sizes(repo, files, 3 if quick else 5)
    many = SIZES.get("leases", 100 if quick else 1000)
    _bench_many_leases(tmp, many, 5 if quick else 9)
    _git_floor(tmp, 5 if quick else 9, many)
    bench_caches(tmp, quick)


def _bench_sizes(repo: Path, files: int, rounds: int) -> None:
    """``worktree list`` and ``status`` with two full leases: their sizes on disk are the ones
    recorded (no walk per call), against one walk of those folders (``du -sk``, what a listing
    that measured every call would cost at least); and ``gitxact.maxLeases`` refusing a third."""
    ws = Workspace(repo)
    docs = [ws.worktrees.acquire(f"size{n}", owner_pid=os.getpid()) for n in range(2)]
    walk = ["du", "-sk", *(doc.path for doc in docs)]
    shown = subprocess.run([*GITXACT_SCRIPT, "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True)
    for command in (["worktree", "list"], ["status"]):
        ours, du = interleaved(_runner([*GITXACT_SCRIPT, *command], repo), _runner(walk, repo), rounds)
        row(
            f"`gitxact {' '.join(command)}` with 2 leases of {files:,} files, their sizes shown",
            ms(ours),
            f"{ms(du)} (du -sk of the 2 folders: one walk)",
            f"{ours / du:.2f}x",
            "goal: no walk per call (<= 0.5x one walk): "
            + ("met" if ours <= du / 2 and "in 2 lease(s)" in shown.stdout else "NOT met"),
        )
    _quiet(["git", "config", "gitxact.maxLeases", "2"], repo)
    refused = subprocess.run(
        [*GITXACT_SCRIPT, "worktree", "acquire", "size2"], cwd=repo, capture_output=True, text=True, check=False
    )
    _quiet(["git", "config", "--unset", "gitxact.maxLeases"], repo)
    said = "gitxact.maxLeases is 2" in refused.stderr and "size0" in refused.stderr
    row(
        "`worktree acquire` beyond gitxact.maxLeases = 2",
        f"exit {refused.returncode}",
        "exit 3, naming the limit and the leases",
        "-",
        "goal: refused: " + ("met" if refused.returncode == 3 and said else "NOT met"),
    )
    for doc in docs:
        ws.worktrees.release(doc.agent, token=doc.token)
    _trash_settled(repo.parent / f"{repo.name}.worktrees")


def _bench_many_leases(tmp: Path, many: int, rounds: int) -> None:
    """One library acquire's repository-lock hold and wall time among *many* leases against
    beside 1 lease (small repositories: it is the number of leases that is measured)."""
    repos = {1: make_repo(tmp, "one-lease"), many: make_repo(tmp, "many-leases")}
    owner = os.getpid()
    for count, repo in repos.items():
        ws = Workspace(repo)
        ws.init()
        for i in range(count):
            ws.worktrees.acquire(f"held-{i}", owner_pid=owner)
    found: dict[int, list[tuple[float, float]]] = {count: [] for count in repos}

    def probe(repo: Path) -> tuple[float, float]:
        ws = Workspace(repo)

        def held() -> list[float]:
            mine = [r for r in _lock_records(repo) if r.get("pid") == os.getpid() and r.get("lock") == "repo"]
            return [float(str(r["hold"])) for r in mine]

        before = len(held())
        start = time.perf_counter()
        doc = ws.worktrees.acquire("probe", owner_pid=owner)
        wall = time.perf_counter() - start
        hold = sum(held()[before:])
        ws.worktrees.release("probe", token=doc.token)
        _trash_settled(repo.parent / f"{repo.name}.worktrees")
        return hold, wall

    def fresh(repo: Path) -> tuple[float, float]:
        other = repos[many if repo == repos[1] else 1]
        argv = [sys.executable, "-c", _FRESH_ACQUIRE, str(repo), str(owner), str(other)]
        hold, wall = (float(x) for x in subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split())
        for settled in (repo, other):
            _trash_settled(settled.parent / f"{settled.name}.worktrees")
        return hold, wall

    cold: dict[int, list[tuple[float, float]]] = {count: [] for count in repos}
    for _ in range(rounds):
        for count, repo in repos.items():
            found[count].append(probe(repo))
            cold[count].append(fresh(repo))
    for label, results in (("", found), (" (a fresh process, as the CLI's)", cold)):
        for index, what in ((0, "repository-lock hold"), (1, "wall time")):
            a = statistics.median(h[index] for h in results[many])
            b = statistics.median(h[index] for h in results[1])
            row(
                f"one acquire at {many:,} leases vs at 1{label}: {what}",
                ms(a),
                f"{ms(b)} (1 lease)",
                f"{a / b:.2f}x",
                "goal <= 1.5x: " + ("met" if a / b <= 1.5 else "NOT met"),
            )


#: One library acquire and release in a process of its own, timed after its imports (made
#: by one acquire in the other repository, so nothing of this one was read before): its
#: repository-lock hold (from its own lock records) and wall time, printed for the bench.
_FRESH_ACQUIRE = """
import os, sys, time
from gitxact import Workspace
repo, owner, other = sys.argv[1], int(sys.argv[2]), Workspace(sys.argv[3])
other.worktrees.release("warm", token=other.worktrees.acquire("warm", owner_pid=owner).token)
ws = Workspace(repo)
start = time.perf_counter()
doc = ws.worktrees.acquire("fresh", owner_pid=owner)
wall = time.perf_counter() - start
hold = sum(float(r["hold"]) for r in ws.locks.stats() if r.get("pid") == os.getpid() and r.get("lock") == "repo")
ws.worktrees.release("fresh", token=doc.token)
print(hold, wall)
"""


def _cannot_mount_xfs() -> str | None:
    import shutil

    if os.geteuid() != 0:
        return "not root"
    if shutil.which("mkfs.xfs") is None:
        return "no mkfs.xfs (xfsprogs)"
    if not Path("/dev/loop-control").exists():
        return "no loop device"
    return None


def bench_caches(tmp: Path, quick: bool) -> None:
    """A 20,000-file ``.worktreeinclude`` folder (64 KiB files) on a loop-mounted XFS with
    reflinks (made here, unmounted and removed after): one lease's include copy against
    ``cp -r`` (coreutils 9 reflinks too, as ``--reflink=always`` does) and ``cp -r
    --reflink=never`` (a copy of the bytes), then the disk 8 leases add."""
    why = _cannot_mount_xfs()
    if why:
        row("include folder reflinked (XFS)", "skipped", why, "-")
        return
    from gitxact.worktrees import include

    image, mount = tmp / "xfs.img", tmp / "xfs"
    mount.mkdir()
    with image.open("wb") as handle:
        handle.truncate(4 << 30)
    _quiet(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], tmp)
    if subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=False, capture_output=True).returncode:
        row("include folder reflinked (XFS)", "skipped", "the loop mount failed", "-")
        return
    try:
        files, size = 20_000, 64 * 1024
        repo = make_repo(mount, "repo")
        (repo / ".gitignore").write_text("target/\n")
        (repo / ".worktreeinclude").write_text("target/\n")
        for i in range(files):
            folder = repo / "target" / f"d{i % 200:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"o{i:05d}.rlib").write_bytes(i.to_bytes(4, "big") * (size // 4))
        # A cache at rest, as a lease finds it: a reflink first writes back the source's dirty
        # pages, which would bill the first copy for writing the folder just generated.
        os.sync()
        counter = iter(range(1_000_000))

        def ours(target: Path) -> None:
            target.mkdir()
            include.copy_included(repo, target)

        def cp(*flags: str) -> Callable[[Path], None]:
            return lambda target: _quiet(["cp", "-r", *flags, str(repo / "target"), str(target)], mount)

        def median_of(runs: dict[str, Callable[[Path], None]], rounds: int) -> dict[str, float]:
            """Each run in turn, every round, its copy deleted (untimed) before the next: three
            byte copies of the folder would not fit the image."""
            spent: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(rounds):
                for name, run in runs.items():
                    target = mount / f"{name}-{next(counter)}"
                    start = time.perf_counter()
                    run(target)
                    spent[name].append(time.perf_counter() - start)
                    _quiet(["rm", "-rf", str(target)], mount)
            return {name: statistics.median(times) for name, times in spent.items()}

        runs = {"ours": ours, "cp": cp(), "always": cp("--reflink=always"), "never": cp("--reflink=never")}
        took = median_of(runs, 1 if quick else 3)
        row(
            "include copy of a 20,000-file folder, reflinked (XFS)",
            ms(took["ours"]),
            f"{ms(took['cp'])} (cp -r: coreutils 9 reflinks too)",
            f"{took['ours'] / took['cp']:.2f}x",
            "goal <= 0.3x: " + ("met" if took["ours"] / took["cp"] <= 0.3 else "NOT met"),
        )
        for name, flags in (("always", "cp -r --reflink=always"), ("never", "cp -r --reflink=never: the bytes")):
            ratio = took["ours"] / took[name]
            row(
                "the same include copy",
                ms(took["ours"]),
                f"{ms(took[name])} ({flags})",
                f"{ratio:.2f}x",
                ("goal <= 0.3x: " + ("met" if ratio <= 0.3 else "NOT met")) if name == "never" else "",
            )
        ws = Workspace(repo)
        ws.init()
        os.sync()
        before = os.statvfs(mount)
        for n in range(8):
            ws.worktrees.acquire(f"c{n}")
        os.sync()
        after = os.statvfs(mount)
        added = (before.f_bfree - after.f_bfree) * after.f_frsize
        row(
            "disk 8 leases with that folder add (statvfs)",
            f"{added / 2**20:.1f} MiB",
            f"{files * size / 2**20:.0f} MiB (the folder)",
            f"{added / (files * size):.1%}",
            "goal < 10%: " + ("met" if added < files * size / 10 else "NOT met"),
        )
    finally:
        subprocess.run(["umount", str(mount)], check=False, capture_output=True)
        image.unlink(missing_ok=True)


#: Each start-up trick (docs/benchmark.md, "Start-up tricks"): the standard module it avoids,
#: and the paths of this table it is on. Kept only where it saves at least 0.1 S.
TRICKS = [
    ("`TYPE_CHECKING = False`, not typing", "typing", ["gx commit", "gx status", "hooks", "--version"]),
    ("util/value.py, not dataclasses", "dataclasses", ["gx commit"]),
    ("git/lite.py, not subprocess", "subprocess", ["gx commit", "gx status"]),
    ("util/identity.py, not socket", "socket", ["gx commit"]),
    ("util/jsontext.py, not json", "json", ["gx commit", "hooks"]),
    ("util/files.py and bin/gx, not re", "re", ["gx commit"]),
    ("str paths in gx's modules and util/files.py, not pathlib", "pathlib", ["gx commit", "gx status"]),
    ("_signal, not signal", "signal", ["gx commit"]),
    ("plain ints, not enum", "enum", ["gx commit"]),
    ("_thread._local, not threading", "threading", ["gx commit"]),
    ("lock context managers as classes, not contextlib", "contextlib", ["gx commit"]),
    ("util/digest.py, not hashlib", "hashlib", ["hooks"]),
    ("_ctypes, not ctypes", "ctypes", ["gx commit"]),
    ("cli/fast.py, not click", "click", ["tracker incr"]),
    ("core/plain.py and state/record.py, not pydantic", "pydantic", ["status"]),
]


def bench_tricks(tmp: Path, quick: bool) -> None:
    """Each start-up trick against the standard module it avoids, imported first on the same
    command: what the plain code would import. Needs valgrind; one run each (it is exact)."""
    if shutil.which("valgrind") is None:
        print("tricks: valgrind not installed, skipped", file=sys.stderr)
        return
    seeded = {**os.environ, "PYTHONHASHSEED": "0"}  # the same hash seed: the same dict work each run

    def counted(argv: list[str], cwd: Path) -> int:
        total = instructions(argv, cwd, seeded)
        assert total is not None  # valgrind was found above
        return total

    plain = make_repo(tmp, "plain")
    inited = make_repo(tmp, "inited")
    Workspace(inited).init()
    gx = "import sys\nfrom gitxact.gx.main import main\nsys.exit(main())"
    cli = "import re, sys\nfrom gitxact.cli.entry import main\nsys.exit(main())"  # re: pip's launcher
    hooks = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import gitxact.hooks.policy, gitxact.tx.journal_reader"
    paths: dict[str, Callable[[str], list[str]]] = {
        "gx commit": lambda pre: [sys.executable, "-c", pre + gx, "commit", "-q", "--allow-empty", "-m", "x"],
        "gx status": lambda pre: [sys.executable, "-c", pre + gx, "status"],
        "hooks": lambda pre: [sys.executable, "-I", "-S", "-c", pre + hooks],
        "--version": lambda pre: [sys.executable, "-c", pre + cli, "--version"],
        "tracker incr": lambda pre: [sys.executable, "-c", pre + cli, "tracker", "incr", "n"],
        "status": lambda pre: [sys.executable, "-c", pre + cli, "status"],
    }

    def where(path: str) -> Path:
        return plain if path.startswith("gx") else inited

    start = counted([sys.executable, "-c", "pass"], plain)
    base = {path: counted(argv(""), where(path)) for path, argv in paths.items()}
    for label, module, on in TRICKS:
        for path in on:
            without = counted(paths[path](f"import {module}\n"), where(path))
            saved = (without - base[path]) / start
            row(
                f"start-up trick: {label}, on `{path}`",
                f"{base[path] / 1e6:.1f} M instructions",
                f"{without / 1e6:.1f} M with `import {module}`; S = {start / 1e6:.1f} M",
                f"{saved:.2f} S saved",
                "keep if >= 0.1 S: " + ("met" if saved >= 0.1 else "NOT met"),
            )


SECTIONS: list[tuple[str, Callable[[Path, bool], None]]] = [
    ("gx", bench_gx),
    ("hooks", bench_hooks),
    ("writers", bench_writers),
    ("lock cost", bench_lock_cost),
    ("event cost", bench_event_cost),
    ("tracker", bench_tracker),
    ("start-up", bench_startup),
    ("tricks", bench_tricks),
    ("contention", bench_contention),
    ("worktrees", bench_worktrees),
    ("transactions", bench_transactions),
    ("land", bench_land),
    ("foresight", bench_foresight),
    ("land parallel", bench_land_parallel),
    ("demo", bench_demo),
    ("postgresql", bench_postgres),
    ("fleet", bench_fleet),
    ("lease scaling", bench_lease_scaling),
    ("sparse", bench_sparse),
    ("caches", bench_caches),
    ("monorepo", bench_scale),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    parser.add_argument("--only", action="append", help="run only sections whose name contains this")
    parser.add_argument("--json", dest="json_out", help="also write the rows as JSON to this file")
    parser.add_argument("--files", type=int, help="files of the monorepo sections' repository (100,000; quick: 10,000)")
    parser.add_argument("--leases", type=int, help="leases of the monorepo's many-leases figure (1,000; quick: 100)")
    args = parser.parse_args()
    SIZES.update({k: v for k, v in (("files", args.files), ("leases", args.leases)) if v is not None})
    chosen = [(name, section) for name, section in SECTIONS if not args.only or any(o in name for o in args.only)]
    if any(name == "monorepo" for name, _ in chosen):  # it runs these two itself, on its repository
        chosen = [(name, section) for name, section in chosen if name not in ("sparse", "caches")]
    with tempfile.TemporaryDirectory(prefix="gitxact-bench-") as tmp:
        for name, section in chosen:
            print(f"== {name}", file=sys.stderr, flush=True)
            folder = Path(tmp) / name.replace(" ", "-")
            folder.mkdir()
            section(folder, args.quick)
    print("| figure | gitxact | raw baseline | ratio | goal |\n|---|---|---|---|---|")
    for r in ROWS:
        print(f"| {r['figure']} | {r['gitxact']} | {r['baseline']} | {r['ratio']} | {r['goal']} |")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(ROWS, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
