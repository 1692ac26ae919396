"""git's own test suite, run twice: with the real git, then with ``git`` being gx (issue 13).

gx means to be a drop-in for git. The strongest check of that is git's own test suite:
each chosen ``t/tNNNN-*.sh`` runs once with ``GIT_TEST_INSTALLED`` at the real git's exec
folder (plain git) and once at a folder whose ``git`` is the shim ``gitxact shim install``
writes (so every ``git`` a test types runs gx, and gx runs the real git). Everything else
is the real git in both runs: ``t/test-lib.sh`` takes ``GIT_EXEC_PATH`` from ``$GIT_TEST_INSTALLED/git
--exec-path`` (gx passes that to the real git), and git puts its exec path first on ``PATH``
for everything it starts, so ``git-*`` programs, hooks and the git that git itself runs are
the real ones. Only the commands the tests type go through gx, which is what an agent's
shell does with the shim first on its ``PATH``.

The source is the one of the installed git: Debian's source package when the git is
Debian's (``apt-get source --download-only`` with a private sources list, so the system's
apt configuration is not touched), else the release tarball; or ``--source DIR``, an
unpacked tree. git's test helpers (``t/helper/test-tool``...) and ``GIT-BUILD-OPTIONS`` are
built once into the cache (``$XDG_CACHE_HOME/gitxact/git-suite``, default ``~/.cache``).

Run through ``scripts/git-suite`` (which sets up .venv). It prints, per script, the tests
that pass and fail under git and under gx, the wall-time ratio gx/git, and every test that
passes under git but fails under gx (number and title); ``--json FILE`` writes the same.
Exit code: 0 when no test fails under gx that passes under git, 1 otherwise, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gitxact.errors import GitxactError  # noqa: E402
from gitxact.git import lite  # noqa: E402
from gitxact.gx import shim  # noqa: E402

#: The scripts run by default, by the git area gx wraps: about 2,300 tests, 17-19 minutes on
#: 2 cores for both runs (gx's run takes most of it: see docs/benchmark.md, "git's own test suite").
AREAS: dict[str, tuple[str, ...]] = {
    "init": ("t0001",),
    "config": ("t1300",),
    "refs": ("t1400",),
    "paths": ("t1501",),
    "worktrees": ("t2400", "t2401", "t2402", "t2403", "t2404", "t2405", "t2406", "t2407"),
    "branch": ("t3200",),
    "rebase": ("t3400",),
    "stash": ("t3903",),
    "am": ("t4150",),
    "gc/prune": ("t5304", "t6500"),
    "fetch/push": ("t5510", "t5516"),
    "mv": ("t7001",),
    "pager": ("t7006",),
    "submodules": ("t7400",),
    "commit/status": ("t7500", "t7501", "t7502", "t7503", "t7504", "t7505", "t7506", "t7507", "t7508", "t7509"),
    "merge": ("t7600",),
}
DEFAULT_SCRIPTS = tuple(sorted(number for numbers in AREAS.values() for number in numbers))

#: What ``make`` builds for the tests: the helpers test-lib.sh runs, and the build options it reads.
MAKE_TARGETS = ("GIT-BUILD-OPTIONS", "t/helper/test-tool", "t/helper/test-fake-ssh")
#: Debian's own build options for git (debian/rules), so the tests expect what the installed git does.
DEBIAN_MAKE_OPTIONS = (
    "prefix=/usr",
    "gitexecdir=/usr/lib/git-core",
    "NO_OPENSSL=1",
    "DEFAULT_PAGER=pager",
    "DEFAULT_EDITOR=editor",
    "PYTHON_PATH=/usr/bin/python3",
)
BUILT_STAMP = ".gitxact-git-suite-built"
TARBALL_URL = "https://mirrors.edge.kernel.org/pub/software/scm/git/git-{version}.tar.xz"

MODES = ("git", "gx")


class SetupError(Exception):
    """The source could not be had or built: reported on one line, exit code 2."""


def log(message: str) -> None:
    print(f"git-suite: {message}", file=sys.stderr, flush=True)


def run(argv: list[str], *, cwd: Path | None = None, quiet: bool = False) -> str:
    """Run a setup command; its output is shown only when it fails (or always unless *quiet*)."""
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SetupError(f"{shlex.join(argv)} failed (exit {proc.returncode}):\n{tail}")
    if not quiet and proc.stderr.strip():
        print(proc.stderr.strip(), file=sys.stderr)
    return proc.stdout


# -- the installed git ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InstalledGit:
    path: str  # the real git (never gitxact's shim)
    version: str  # "2.39.5"
    exec_path: str  # its --exec-path: git-* programs, and usually a `git` too

    @property
    def installed_dir(self) -> str:
        """The folder for GIT_TEST_INSTALLED in the plain run: the exec path if it has a git."""
        if os.access(os.path.join(self.exec_path, "git"), os.X_OK):
            return self.exec_path
        return os.path.dirname(self.path)


def installed_git() -> InstalledGit:
    path = lite.real_git()
    out = run([path, "--version"], quiet=True).strip()
    match = re.match(r"git version (\d+\.\d+\.\d+)", out)
    if match is None:
        raise SetupError(f"cannot read the version of {path}: {out!r}")
    exec_path = run([path, "--exec-path"], quiet=True).strip()
    return InstalledGit(path=path, version=match.group(1), exec_path=exec_path)


def debian_source(git: InstalledGit) -> tuple[str, str] | None:
    """(source package, version) of the Debian package that installed *git*, if one did."""
    if shutil.which("dpkg-query") is None:
        return None
    for candidate in (git.path, os.path.realpath(git.path)):
        proc = subprocess.run(["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False)
        if proc.returncode == 0:
            package = proc.stdout.split(":", 1)[0].strip()
            break
    else:
        return None
    fields = run(["dpkg-query", "-W", "-f=${source:Package}\t${source:Version}", package], quiet=True).split("\t")
    name, version = fields[0], fields[1]
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    if upstream != git.version:
        log(f"{package} {version} does not match git {git.version}; not using Debian's source")
        return None
    return name, version


# -- the source -----------------------------------------------------------------------------


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gitxact" / "git-suite"


def system_deb_repositories() -> list[tuple[str, str, str, str]]:
    """(uri, suite, components, signed-by) of every ``deb`` source the system's apt uses."""
    found: list[tuple[str, str, str, str]] = []
    etc = Path("/etc/apt")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split("#", 1)[0].split()
            if not words or words[0] != "deb":
                continue
            signed = ""
            words = words[1:]
            if words and words[0].startswith("["):
                options = []
                while words:
                    word = words.pop(0)
                    options.append(word)
                    if word.endswith("]"):
                        break
                text = " ".join(options).strip("[]")
                signed = next((o.split("=", 1)[1] for o in text.split() if o.startswith("signed-by=")), "")
            if len(words) >= 2:
                found.append((words[0], words[1], " ".join(words[2:]), signed))
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        for paragraph in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields: dict[str, str] = {}
            for line in paragraph.splitlines():
                if ":" in line and not line.startswith(("#", " ")):
                    key, value = line.split(":", 1)
                    fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes") == "no":
                continue
            for uri in fields.get("uris", "").split():
                for suite in fields.get("suites", "").split():
                    found.append((uri, suite, fields.get("components", ""), fields.get("signed-by", "")))
    return found


def fetch_debian(cache: Path, package: str, version: str) -> Path:
    """Debian's source of *package* *version*, unpacked with its patches: ``apt-get source``.

    A private sources list (``deb-src`` for every ``deb`` the system uses), package lists
    and archive cache under *cache*/apt: the system's apt configuration and lists stay as
    they are.
    """
    dest = cache / "src" / f"{package}-{version.split(':', 1)[-1]}"
    if (dest / "t" / "test-lib.sh").is_file():
        return dest
    apt = cache / "apt"
    for folder in (apt / "lists" / "partial", apt / "cache" / "archives" / "partial", cache / "download"):
        folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for uri, suite, components, signed in system_deb_repositories():
        if "debian" not in uri:  # only Debian's archive has Debian's source packages
            continue
        option = f"[signed-by={signed}] " if signed.startswith("/") else ""
        lines.append(f"deb-src {option}{uri} {suite} {components}")
    if not lines:
        raise SetupError("no Debian repository in /etc/apt to take the source from")
    (apt / "sources.list").write_text("\n".join(dict.fromkeys(lines)) + "\n", encoding="utf-8")
    options = [
        f"-oDir::Etc::sourcelist={apt / 'sources.list'}",
        "-oDir::Etc::sourceparts=/nonexistent",
        f"-oDir::State::Lists={apt / 'lists'}",
        f"-oDir::Cache={apt / 'cache'}",
    ]
    if os.geteuid() == 0:  # apt's download sandbox user (_apt) cannot write into a private cache
        options.append("-oAPT::Sandbox::User=root")
    log(f"apt-get source {package}={version} (private sources list {apt / 'sources.list'})")
    run(["apt-get", *options, "update"], quiet=True)
    run(["apt-get", *options, "source", "--download-only", f"{package}={version}"], cwd=cache / "download", quiet=True)
    dsc = cache / "download" / f"{package}_{version.split(':', 1)[-1]}.dsc"
    if not dsc.is_file():
        raise SetupError(f"apt-get source did not leave {dsc}")
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)  # dpkg-source links the tarballs beside it
    if shutil.which("dpkg-source") is not None:
        run(["dpkg-source", "--no-check", "-x", str(dsc), str(tmp)], quiet=True)
    else:  # no dpkg-dev: the upstream tarball and Debian's patches by hand
        _unpack_with_patches(cache / "download", tmp)
    for leftover in tmp.parent.glob(f"{package}_*"):  # dpkg-source's links to the tarballs
        leftover.unlink()
    tmp.rename(dest)
    return dest


def _unpack_with_patches(download: Path, dest: Path) -> None:
    orig = next(download.glob("*.orig.tar.*"))
    debian = next(download.glob("*.debian.tar.*"))
    _untar(orig, dest, strip=True)
    _untar(debian, dest, strip=False)
    series = dest / "debian" / "patches" / "series"
    if series.is_file():
        for line in series.read_text(encoding="utf-8").split("\n"):
            name = line.split("#", 1)[0].strip()
            if name:
                run(
                    ["patch", "-p1", "-s", "--no-backup-if-mismatch", "-i", str(dest / "debian" / "patches" / name)],
                    cwd=dest,
                    quiet=True,
                )


def _untar(archive: Path, dest: Path, *, strip: bool) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        if strip:
            for member in members:
                member.name = member.name.split("/", 1)[1] if "/" in member.name else ""
            members = [m for m in members if m.name]
        tar.extractall(dest, members=members, filter="data")


def fetch_tarball(cache: Path, version: str) -> Path:
    """git's release tarball (no distribution patches): the route when Debian's is not there."""
    dest = cache / "src" / f"git-{version}"
    if (dest / "t" / "test-lib.sh").is_file():
        return dest
    url = TARBALL_URL.format(version=version)
    archive = cache / "download" / f"git-{version}.tar.xz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    if not archive.is_file():
        log(f"downloading {url}")
        with urllib.request.urlopen(url, timeout=60) as response:
            archive.with_suffix(".part").write_bytes(response.read())
        archive.with_suffix(".part").rename(archive)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    _untar(archive, tmp, strip=True)
    tmp.rename(dest)
    return dest


def get_source(cache: Path, git: InstalledGit, given: Path | None) -> Path:
    if given is not None:
        src = given.resolve()
        if not (src / "t" / "test-lib.sh").is_file() or not (src / "Makefile").is_file():
            raise SetupError(f"{src} is not an unpacked git source tree (no Makefile, t/test-lib.sh)")
        return src
    debian = debian_source(git)
    if debian is not None:
        try:
            return fetch_debian(cache, *debian)
        except (SetupError, OSError, StopIteration) as exc:
            log(f"Debian's source did not come: {exc}; trying the release tarball")
    try:
        return fetch_tarball(cache, git.version)
    except OSError as exc:
        raise SetupError(f"cannot fetch git {git.version}'s source ({exc}); pass --source DIR") from exc


def make_options() -> list[str]:
    """Debian's options, less the libraries this machine has no headers for."""
    options = list(DEBIAN_MAKE_OPTIONS)
    if shutil.which("curl-config") is None:
        options.append("NO_CURL=1")  # only git-remote-http needs it; the http tests are skipped
    pkg_config = shutil.which("pkg-config")
    if pkg_config and subprocess.run([pkg_config, "--exists", "libpcre2-8"], check=False).returncode == 0:
        options.append("USE_LIBPCRE2=1")  # as Debian builds it: the PCRE tests then run
    return options


def build(src: Path, jobs: int) -> None:
    """Build git's test helpers and GIT-BUILD-OPTIONS in *src*, once (a stamp names the options)."""
    options = make_options()
    stamp = src / BUILT_STAMP
    wanted = " ".join(options) + "\n"
    if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
        return
    log(f"building git's test helpers in {src} (once; about a minute on 2 cores)")
    started = time.monotonic()
    run(["make", "-C", str(src), f"-j{jobs}", *options, *MAKE_TARGETS], quiet=True)
    shell = _build_option(src, "SHELL_PATH") or "/bin/sh"
    perl = _build_option(src, "PERL_PATH") or "/usr/bin/perl"
    run(["make", "-C", str(src / "templates"), f"SHELL_PATH={shell}", f"PERL_PATH={perl}"], quiet=True)
    stamp.write_text(wanted, encoding="utf-8")
    log(f"built in {time.monotonic() - started:.0f}s")


def _build_option(src: Path, name: str) -> str | None:
    """A value from GIT-BUILD-OPTIONS (lines ``NAME='value'``)."""
    path = src / "GIT-BUILD-OPTIONS"
    if not path.is_file():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{name}="):
            return shlex.split(line.split("=", 1)[1])[0] if line.split("=", 1)[1] else ""
    return None


def skipped_for_lack(options: list[str]) -> list[str]:
    """What this machine lacks that makes git's tests skip themselves (in both runs alike)."""
    notes = []
    if subprocess.run(["perl", "-MIO::Pty", "-e1"], check=False, capture_output=True).returncode != 0:
        notes.append("no perl IO::Pty: the TTY tests (most of t7006 pager) are skipped; Debian: libio-pty-perl")
    if os.geteuid() == 0:
        notes.append("running as root: the SANITY tests (unreadable files and folders) are skipped")
    if shutil.which("gpg") is None:
        notes.append("no gpg: the GPG tests (signed commits) are skipped")
    if "NO_CURL=1" in options:
        notes.append("built with NO_CURL (no libcurl headers): the http tests are skipped")
    return notes


def find_scripts(src: Path, wanted: list[str]) -> list[Path]:
    found = []
    for prefix in wanted:
        matches = sorted((src / "t").glob(f"{prefix}-*.sh"))
        if not matches:
            raise SetupError(f"no test script {prefix}-*.sh in {src / 't'}")
        found.extend(matches)
    return found


# -- one test script --------------------------------------------------------------------------

TAP_LINE = re.compile(r"^(ok|not ok) (\d+)(?: - (.*?))?(?: # (skip|SKIP|TODO)\b ?(.*))?$")


@dataclasses.dataclass
class Outcome:
    """One run of one test script: each test's state and title, the time, the exit code."""

    seconds: float = 0.0
    exit_code: int | None = None
    timed_out: bool = False
    planned: int | None = None
    states: dict[int, str] = dataclasses.field(default_factory=dict)  # pass fail skip todo fixed
    titles: dict[int, str] = dataclasses.field(default_factory=dict)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    def numbers(self, state: str) -> list[int]:
        return sorted(n for n, s in self.states.items() if s == state)

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "known_breakages": self.count("todo"),
            "fixed_breakages": self.count("fixed"),
            "planned": self.planned,
            "seconds": round(self.seconds, 2),
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "failed_tests": self.numbers("fail"),
        }


def parse_tap(text: str) -> Outcome:
    outcome = Outcome()
    for line in text.splitlines():
        if line.startswith("1.."):
            plan = re.match(r"1\.\.(\d+)", line)
            outcome.planned = int(plan.group(1)) if plan else None
            continue
        match = TAP_LINE.match(line)
        if match is None:
            continue
        verdict, number, title, directive, rest = match.groups()
        n = int(number)
        if directive and directive.lower() == "skip":
            outcome.states[n] = "skip"
            outcome.titles[n] = (title or rest or "").strip()
            continue
        outcome.titles[n] = (title or "").strip()
        if directive == "TODO":
            outcome.states[n] = "todo" if verdict == "not ok" else "fixed"
        else:
            outcome.states[n] = "pass" if verdict == "ok" else "fail"
    return outcome


@dataclasses.dataclass(frozen=True)
class Setup:
    src: Path
    out: Path  # logs: <out>/<mode>/<script>.out
    trash: Path  # --root of each run: <trash>/<mode>/<script>
    installed: dict[str, str]  # mode -> GIT_TEST_INSTALLED
    exec_path: str
    shell: str
    test_opts: tuple[str, ...]
    timeout: float
    keep_trash: bool


_children: set[subprocess.Popen[bytes]] = set()
_children_lock = threading.Lock()


def run_script(setup: Setup, script: Path, mode: str) -> Outcome:
    """Run *script* with GIT_TEST_INSTALLED for *mode*; its whole output goes to a log file."""
    name = script.name.removesuffix(".sh")
    root = setup.trash / mode / name
    log_path = setup.out / mode / f"{name}.out"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GITXACT_"))}
    env["GIT_TEST_INSTALLED"] = setup.installed[mode]
    env["GIT_TEST_EXEC_PATH"] = setup.exec_path  # the real git's helpers, also in the gx run
    argv = [setup.shell, script.name, f"--root={root}", *setup.test_opts]
    started = time.monotonic()
    timed_out = False
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            cwd=script.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills every child
        )
        with _children_lock:
            _children.add(proc)
        try:
            proc.wait(timeout=setup.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
            proc.wait()
        finally:
            with _children_lock:
                _children.discard(proc)
    outcome = parse_tap(log_path.read_text(encoding="utf-8", errors="replace"))
    outcome.seconds = time.monotonic() - started
    outcome.exit_code = proc.returncode
    outcome.timed_out = timed_out
    return outcome


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


@dataclasses.dataclass
class ScriptResult:
    script: str
    runs: dict[str, Outcome]

    @property
    def tests(self) -> int:
        """The script's plan (``1..N``), else the highest test number seen."""
        planned = [o.planned for o in self.runs.values() if o.planned]
        return max(planned or [max(o.states, default=0) for o in self.runs.values()] or [0])

    @property
    def ratio(self) -> float | None:
        git, gx = self.runs.get("git"), self.runs.get("gx")
        if git is None or gx is None or git.seconds <= 0:
            return None
        return gx.seconds / git.seconds

    def regressions(self) -> list[tuple[int, str]]:
        """Tests that pass under git and not under gx: failed, skipped, or never ran (the run died)."""
        git, gx = self.runs["git"], self.runs["gx"]
        found = []
        for n in git.numbers("pass"):
            state = gx.states.get(n)
            if state != "pass":
                note = "" if state == "fail" else f" [{'not run' if state is None else state} under gx]"
                found.append((n, git.titles.get(n, "") + note))
        return found

    def fixed(self) -> list[tuple[int, str]]:
        """Tests that fail under git and pass under gx (flaky ones, or gx doing better)."""
        git, gx = self.runs["git"], self.runs["gx"]
        return [(n, gx.titles.get(n, "")) for n in git.numbers("fail") if gx.states.get(n) == "pass"]

    def as_json(self) -> dict[str, Any]:
        ratio = self.ratio
        return {
            "script": self.script,
            "tests": self.tests,
            **{mode: outcome.as_json() for mode, outcome in self.runs.items()},
            "ratio": None if ratio is None else round(ratio, 2),
            "regressions": [{"number": n, "title": t} for n, t in self.regressions()],
            "better_under_gx": [{"number": n, "title": t} for n, t in self.fixed()],
            # Every test's state in each run: what --from-json reads back.
            "states": [
                {"number": n, "title": self._title(n), **{mode: o.states.get(n) for mode, o in self.runs.items()}}
                for n in sorted({n for o in self.runs.values() for n in o.states})
            ],
        }

    def _title(self, number: int) -> str:
        return next((o.titles[number] for o in self.runs.values() if o.titles.get(number)), "")

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ScriptResult:
        runs = {}
        for mode in MODES:
            summary = doc[mode]
            outcome = Outcome(
                seconds=summary["seconds"],
                exit_code=summary["exit_code"],
                timed_out=summary["timed_out"],
                planned=summary["planned"],
            )
            for test in doc["states"]:
                if test.get(mode) is not None:
                    outcome.states[test["number"]] = test[mode]
                    outcome.titles[test["number"]] = test["title"]
            runs[mode] = outcome
        return cls(script=doc["script"], runs=runs)


def run_both(setup: Setup, script: Path) -> ScriptResult:
    """git first, then gx, back to back: the ratio compares runs under the same load."""
    result = ScriptResult(script=script.name.removesuffix(".sh"), runs={})
    for mode in MODES:
        result.runs[mode] = run_script(setup, script, mode)
    if not setup.keep_trash:
        for mode in MODES:
            shutil.rmtree(setup.trash / mode / result.script, ignore_errors=True)
    git, gx = result.runs["git"], result.runs["gx"]
    ratio = result.ratio
    log(
        f"{result.script}: git {git.count('pass')}/{git.count('fail')} gx {gx.count('pass')}/{gx.count('fail')}"
        f" (pass/fail), {git.seconds:.0f}s vs {gx.seconds:.0f}s"
        + (f" (x{ratio:.2f})" if ratio is not None else "")
        + (f", {len(result.regressions())} fail under gx only" if result.regressions() else "")
    )
    return result


# -- the report -------------------------------------------------------------------------------


TABLE_HEADER = ("script", "tests", "skipped", "git pass", "git fail", "gx pass", "gx fail", "git s", "gx s", "gx/git")


def table_row(name: str, results: list[ScriptResult]) -> tuple[str, ...]:
    """One line of the table for *results* (one script, or all of them for the total)."""

    def total(mode: str, *states: str) -> int:
        return sum(r.runs[mode].count(state) for r in results for state in states)

    def failed(mode: str) -> str:
        return str(total(mode, "fail")) + (" (timeout)" if any(r.runs[mode].timed_out for r in results) else "")

    skipped = {mode: total(mode, "skip", "todo", "fixed") for mode in MODES}
    git_s = sum(r.runs["git"].seconds for r in results)
    gx_s = sum(r.runs["gx"].seconds for r in results)
    return (
        name,
        str(sum(r.tests for r in results)),
        str(skipped["git"]) if skipped["git"] == skipped["gx"] else f"{skipped['git']}/{skipped['gx']}",
        str(total("git", "pass")),
        failed("git"),
        str(total("gx", "pass")),
        failed("gx"),
        f"{git_s:.1f}",
        f"{gx_s:.1f}",
        f"{gx_s / git_s:.1f}" if git_s > 0 else "-",
    )


def table(results: list[ScriptResult], *, markdown: bool = False) -> str:
    """The per-script table: "skipped" counts skips and known breakages (git's/gx's if they differ)."""
    rows = [TABLE_HEADER, *(table_row(r.script, [r]) for r in results), table_row("total", results)]
    if markdown:
        lines = ["| " + " | ".join(row) + " |" for row in rows]
        lines.insert(1, "|---" + "|---:" * (len(TABLE_HEADER) - 1) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def report(results: list[ScriptResult], *, markdown: bool = False) -> str:
    parts = [table(results, markdown=markdown), ""]
    regressions = [(r.script, n, t) for r in results for n, t in r.regressions()]
    if regressions:
        parts.append(f"{len(regressions)} test(s) pass under git and fail under gx:")
        parts.extend(f"  {script} #{n}: {title}" for script, n, title in regressions)
    else:
        parts.append("no test fails under gx that passes under git")
    better = [(r.script, n, t) for r in results for n, t in r.fixed()]
    if better:
        parts.append(f"{len(better)} test(s) fail under git and pass under gx (flaky, or not gx's doing):")
        parts.extend(f"  {script} #{n}: {title}" for script, n, title in better)
    return "\n".join(parts)


def install_shim(folder: Path, gx: Path | None) -> None:
    """``gitxact shim install FOLDER``; with *gx*, the same shim running that gx (another gitxact's)."""
    if gx is None:
        shim.install(folder)
        return
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "git"
    target.write_text(
        shim.TEMPLATE.format(mark=lite.SHIM_MARK.decode(), command=shlex.quote(str(gx.resolve()))), encoding="utf-8"
    )
    target.chmod(0o755)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/git-suite",
        description="Run git's own test scripts with the real git and with git = gx (the shim); compare.",
    )
    parser.add_argument("--scripts", help="comma-separated script numbers (t1400,t7508); default: the broad list")
    parser.add_argument("--jobs", type=int, default=2, help="test scripts at once (default 2)")
    parser.add_argument("--json", type=Path, help="write the results to this file as JSON")
    parser.add_argument("--source", type=Path, help="an unpacked git source tree to use (built in place)")
    parser.add_argument("--gx", type=Path, help="the gx to test (default: this checkout's, .venv/bin/gx)")
    parser.add_argument("--out", type=Path, help="folder for each run's output (default: a new one in the cache)")
    parser.add_argument("--test-opts", default="", help="extra options for every test script, e.g. '-v --run=51'")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds one script may run (default 1200)")
    parser.add_argument("--keep-trash", action="store_true", help="keep each script's trash directory")
    parser.add_argument("--markdown", action="store_true", help="print the table in Markdown (for docs/benchmark.md)")
    parser.add_argument("--from-json", type=Path, help="print the report of an earlier --json file; run nothing")
    parser.add_argument("--prepare-only", action="store_true", help="fetch and build, run no test")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json is not None:
        document = json.loads(args.from_json.read_text(encoding="utf-8"))
        if any("states" not in doc for doc in document.get("scripts", [])):
            log(f"error: {args.from_json} has no per-test states (written by an older git-suite)")
            return 2
        results = [ScriptResult.from_json(doc) for doc in document["scripts"]]
        print(report(results, markdown=args.markdown))
        return 1 if any(r.regressions() for r in results) else 0
    cache = cache_root()
    try:
        git = installed_git()
        src = get_source(cache, git, args.source)
        build(src, args.jobs)
        scripts = find_scripts(src, args.scripts.split(",") if args.scripts else list(DEFAULT_SCRIPTS))
    except (SetupError, GitxactError) as exc:
        log(f"error: {exc}")
        return 2
    log(f"git {git.version} at {git.path} (exec path {git.exec_path}); source {src}")
    notes = skipped_for_lack(make_options())
    for note in notes:
        log(note)
    if args.prepare_only:
        return 0
    out = (args.out or cache / "runs" / time.strftime("%Y%m%dT%H%M%S")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    shim_dir = out / "shim"
    install_shim(shim_dir, args.gx)
    trash = Path(tempfile.mkdtemp(prefix="git-suite-trash-", dir=out))
    setup = Setup(
        src=src,
        out=out,
        trash=trash,
        installed={"git": git.installed_dir, "gx": str(shim_dir)},
        exec_path=git.exec_path,
        shell=_build_option(src, "TEST_SHELL_PATH") or "/bin/sh",
        test_opts=tuple(shlex.split(args.test_opts)),
        timeout=args.timeout,
        keep_trash=args.keep_trash,
    )
    log(f"{len(scripts)} scripts, {args.jobs} at once; gx through {shim_dir / 'git'}; output in {out}")
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results = list(pool.map(lambda script: run_both(setup, script), scripts))
    except KeyboardInterrupt:
        with _children_lock:
            for proc in _children:
                _kill_group(proc)
        raise
    finally:
        if not args.keep_trash:
            shutil.rmtree(trash, ignore_errors=True)
    print(report(results, markdown=args.markdown))
    print(f"\n{time.monotonic() - started:.0f}s in all; each run's output in {out}/{{git,gx}}/")
    if args.json is not None:
        document = {
            "schema": 1,
            "git": {"path": git.path, "version": git.version, "exec_path": git.exec_path},
            "gx": {"shim": str(shim_dir / "git"), "gx": str(args.gx or Path(sys.executable).parent / "gx")},
            "source": str(src),
            "notes": notes,
            "output": str(out),
            "scripts": [r.as_json() for r in results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 1 if any(r.regressions() for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
