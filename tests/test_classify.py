"""The classification table, row by row, against what `gx` really does.

Each shape is classified, then (where running it is practical) run through `gx` in a
real repository: the locks gx really took are read back from the event record (`events/events.log`)
(every acquisition is recorded there on release), and a read-only shape must take
none and change nothing (refs, index bytes and mtime, config), even with a stat-dirty
index that a plain `git status` would rewrite.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from support.proc import GX, git

from gitxact.git.lite import worktree_ids
from gitxact.gx import rules
from gitxact.gx.cmdline import parse
from gitxact.gx.rules import (
    ANY_LEASE,
    GUARD_GC,
    LEASED_BRANCH,
    LEASED_WORKTREE,
    PROTECTED_REF,
    R_REFRESH,
    REFS_ONLY,
    REPO,
    REPOSITORY,
    W_CONFIG,
    W_CONFIG_REMOTE,
    W_NOTES,
    W_REMOTE,
    W_STASH,
    R,
    Rule,
    W,
)

DEL_BRANCH = Rule(REPOSITORY, LEASED_BRANCH)
LEASED_WT = Rule(REPOSITORY, LEASED_WORKTREE)
DEL_REF = Rule(REPOSITORY, PROTECTED_REF)
T = "{tmp}"  # replaced by a scratch folder outside the repository

#: (command line after `git`, expected rule, run it through gx?)
SHAPES: list[tuple[str, Rule, bool]] = [
    # read-only
    ("status", R_REFRESH, True),
    ("status --porcelain", R_REFRESH, True),
    ("log --oneline -n 2", R, True),
    ("show HEAD", R, True),
    ("diff --cached", R, True),
    ("diff --staged HEAD", R, True),
    ("diff --no-index /dev/null README", R, True),
    ("diff-files", R, True),
    ("diff-index HEAD", R, True),
    ("diff-tree HEAD", R, True),
    ("blame README", R, True),
    ("annotate README", R, True),
    ("pickaxe README", R, True),
    ("cat-file -p HEAD", R, True),
    ("check-attr -a README", R, True),
    ("check-ignore README", R, True),
    ("check-mailmap 'A <a@b>'", R, True),
    ("check-ref-format refs/heads/x", R, True),
    ("cherry main side", R, True),
    ("column", R, True),
    ("count-objects -v", R, True),
    ("describe --tags", R, True),
    ("fast-export main", R, True),
    ("fmt-merge-msg", R, True),
    ("for-each-ref", R, True),
    (f"format-patch -o {T}/patches -1", R, True),
    ("fsck", R, True),
    ("fsck-objects", R, True),
    ("grep hello", R, True),
    ("help -g", R, True),
    ("ls-files -s", R, True),
    ("ls-remote origin", R, True),
    ("ls-tree HEAD", R, True),
    ("merge-base main side", R, True),
    ("merge-tree --write-tree main side", R, True),
    ("name-rev HEAD", R, True),
    ("range-diff main...side", R, True),
    ("rev-list --all", R, True),
    ("rev-parse HEAD", R, True),
    ("shortlog -s HEAD", R, True),
    ("show-branch", R, True),
    ("show-ref", R, True),
    ("stripspace", R, True),
    ("var GIT_AUTHOR_IDENT", R, True),
    ("verify-commit HEAD", R, True),
    ("verify-tag v1", R, True),
    ("version", R, True),
    ("whatchanged -1", R, True),
    (f"archive -o {T}/a.tar HEAD", R, True),
    (f"bugreport -o {T}/report", R, True),
    (f"diagnose -o {T}/diag", R, True),
    (f"clone -q . {T}/clone", R, True),
    ("get-tar-commit-id", R, True),
    ("mailinfo msg patch", R, False),  # reads stdin, writes the named files
    ("mailsplit -o. mbox", R, False),
    ("pack-objects --stdout", R, False),
    ("pack-redundant --all", R, True),
    ("patch-id", R, True),
    ("show-index", R, False),
    ("upload-pack --advertise-refs .", R, True),
    ("upload-archive .", R, False),
    ("verify-pack -v x.idx", R, False),
    ("credential fill", R, True),
    ("credential-cache exit", R, False),
    ("credential-store get", R, True),
    ("env--helper --type=bool x", R, False),
    # `X --help`, `X -h`, no command at all: git runs nothing
    ("commit --help", R, False),
    ("gc --help", R, False),
    ("commit -h", R, True),
    ("--version", R, True),
    ("--exec-path", R, True),
    ("-h", R, True),
    # one worktree
    ("diff", W, True),  # see rules.py: git 2.39 rewrites a stat-dirty index here
    ("diff HEAD -- README", W, True),
    ("describe --dirty", W, True),
    ("add README", W, True),
    ("stage README", W, True),
    ("commit -q --allow-empty -m x", W, True),
    ("commit -q -a -m y", W, True),
    ("am --abort", W, True),
    ("apply --check /dev/null", W, True),
    ("checkout-index -a", W, True),
    ("cherry-pick side", W, True),
    ("clean -n", W, True),
    ("commit-tree HEAD^{tree} -m t", W, True),
    ("merge --ff-only side", W, True),
    ("merge-file -p a b c", W, False),
    ("mktag", W, True),
    ("mktree", W, True),
    ("mv README README2", W, True),
    ("read-tree HEAD", W, True),
    ("rebase HEAD", W, True),
    ("reset -q", W, True),
    ("restore README", W, True),
    ("revert --abort", W, True),
    ("rm -q --cached README", W, True),
    ("unpack-file HEAD:README", W, False),  # leaves a temp file in the worktree
    ("update-index --refresh", W, True),
    ("write-tree", W, True),
    ("index-pack --stdin", W, True),
    ("unpack-objects", W, True),
    ("receive-pack .", W, False),
    ("send-pack origin main", W, False),
    ("fetch-pack origin", W, False),
    ("difftool --no-prompt", W, True),
    ("mergetool --no-prompt", W, True),
    ("hook run --ignore-missing pre-commit", W, True),
    ("for-each-repo --config=x gc", W, False),
    ("merge-index true -a", W, False),
    ("merge-ours HEAD", W, False),
    ("merge-recursive HEAD -- HEAD side", W, False),
    ("merge-recursive-ours", W, False),
    ("merge-recursive-theirs", W, False),
    ("merge-subtree", W, False),
    ("bisect--helper", W, False),
    ("checkout--worker", W, False),
    ("submodule--helper list", W, False),
    ("credential-cache--daemon x", W, False),
    ("fsmonitor--daemon status", W, False),
    ("remote-ext . x", W, False),
    ("remote-fd 0", W, False),
    ("upload-archive--writer", W, False),
    ("frobnicate", W, True),  # unknown: the safe default
    ("--frobnicate status", W, True),  # an unknown global option
    ("checkout side", W_CONFIG, True),
    ("switch -c topic", W_CONFIG, True),
    ("init -q", R, True),
    ("init-db -q", R, True),
    ("fetch -q origin", W_REMOTE, True),
    ("pull -q --ff-only origin main", W_REMOTE, True),
    ("push -q origin main", W_CONFIG_REMOTE, True),
    ("hash-object README", R, True),
    ("hash-object -w README", W, True),
    ("interpret-trailers --trailer a=b /dev/null", R, True),
    ("interpret-trailers --in-place x", W, False),
    # branch
    ("branch", R, True),
    ("branch -a -v", R, True),
    ("branch --list 'si*'", R, True),
    ("branch --show-current", R, True),
    ("branch --contains HEAD", R, True),
    ("branch --merged main", R, True),
    ("branch --points-at HEAD", R, True),
    ("branch newbie", W_CONFIG, True),
    ("branch -u origin/main", W_CONFIG, True),
    ("branch --unset-upstream side", W_CONFIG, True),
    ("branch -d side", DEL_BRANCH, True),
    ("branch -D side", DEL_BRANCH, True),
    ("branch --delete side", DEL_BRANCH, True),
    ("branch --del side", DEL_BRANCH, True),  # git accepts unambiguous abbreviations
    ("branch -m side side2", DEL_BRANCH, True),
    ("branch -M side2", DEL_BRANCH, False),
    ("branch -c side side3", REPO, True),
    ("branch -f side HEAD", REPO, True),
    # tag
    ("tag", R, True),
    ("tag -l 'v*'", R, True),
    ("tag -n", R, True),
    ("tag -v v1", R, True),
    ("tag --contains HEAD", R, True),
    ("tag --points-at HEAD", R, True),
    ("tag v2", W, True),
    ("tag -a -m note v3", W, True),
    ("tag -d v1", REPO, True),
    # config
    ("config user.name", R, True),
    ("config --get user.name", R, True),
    ("config -l", R, True),
    ("config --get-regexp user", R, True),
    ("config --get-colorbool color.ui", R, True),
    ("config x.y z", W_CONFIG, True),
    ("config --add x.y z", W_CONFIG, True),
    ("config --unset x.y", W_CONFIG, True),
    ("config --remove-section x", W_CONFIG, True),
    ("config --file " + T + "/other x.y z", W_CONFIG, True),
    ("config --worktree x.y z", W, False),  # needs extensions.worktreeConfig
    # worktree
    ("worktree list", R, True),
    ("worktree", R, True),
    (f"worktree add -q {T}/wt2", REPO, True),
    ("worktree prune", GUARD_GC, True),
    (f"worktree lock {T}/spare", REPO, True),
    (f"worktree unlock {T}/spare", LEASED_WT, True),
    (f"worktree move {T}/spare {T}/spare2", LEASED_WT, True),
    (f"worktree remove {T}/spare", LEASED_WT, True),
    ("worktree repair", REPO, True),
    # stash
    ("stash list", R, True),
    ("stash show", R, True),
    ("stash", W_STASH, True),
    ("stash push -m note", W_STASH, True),
    ("stash pop", W_STASH, True),
    ("stash apply", W_STASH, True),
    ("stash drop", W_STASH, True),
    ("stash clear", W_STASH, True),
    ("stash create", W_STASH, True),
    # remote
    ("remote", R, True),
    ("remote -v", R, True),
    ("remote show origin", R, True),
    ("remote get-url origin", R, True),
    ("remote add other ../other", W_CONFIG_REMOTE, True),
    ("remote set-url origin ../elsewhere", W_CONFIG_REMOTE, True),
    ("remote rename origin upstream", W_CONFIG_REMOTE, True),
    ("remote remove origin", W_CONFIG_REMOTE, True),
    ("remote prune origin", W_REMOTE, True),
    ("remote update", W_REMOTE, True),
    # notes
    ("notes", R, True),
    ("notes list", R, True),
    ("notes show", R, True),
    ("notes get-ref", R, True),
    ("notes add -f -m hi", W_NOTES, True),
    ("notes --ref=review add -m hi", W_NOTES, True),
    ("notes remove --ignore-missing", W_NOTES, True),
    ("notes prune", W_NOTES, True),
    # submodule, sparse-checkout, bisect, rerere, bundle
    ("submodule", R, True),
    ("submodule status", R, True),
    ("submodule summary", R, True),
    ("submodule init", W_CONFIG, True),
    ("submodule sync", W_CONFIG, True),
    ("sparse-checkout list", R, True),
    ("sparse-checkout disable", W_CONFIG, True),
    ("bisect", R, True),
    ("bisect log", R, True),
    ("bisect terms", R, True),
    ("bisect visualize", R, False),  # starts gitk
    ("bisect view", R, False),
    ("bisect help", R, True),
    ("bisect start", W, True),
    ("bisect reset", W, True),
    ("rerere status", R, True),
    ("rerere diff", R, True),
    ("rerere remaining", R, True),
    ("rerere", W, True),
    ("rerere gc", W, True),
    (f"bundle create {T}/b.bundle main", R, True),
    (f"bundle verify {T}/missing.bundle", R, True),
    (f"bundle list-heads {T}/missing.bundle", R, True),
    (f"bundle unbundle {T}/missing.bundle", W, True),
    # reflog, maintenance, commit-graph, multi-pack-index
    ("reflog", R, True),
    ("reflog show", R, True),
    ("reflog main", R, True),
    ("reflog exists HEAD", R, True),
    ("reflog expire --expire=now --all", GUARD_GC, True),
    ("reflog delete HEAD@{0}", REPO, True),
    ("maintenance run --task=pack-refs", GUARD_GC, True),
    ("maintenance unregister", W_CONFIG, True),
    ("commit-graph verify", R, True),
    ("commit-graph write --reachable", REPO, True),
    ("multi-pack-index verify", R, True),
    ("multi-pack-index write", REPO, True),
    # the whole repository
    ("gc -q", GUARD_GC, True),
    ("prune", GUARD_GC, True),
    ("repack -q", REPO, True),
    ("repack -q -d", GUARD_GC, True),
    ("repack -q -a -d", GUARD_GC, True),
    ("repack -q -ad", GUARD_GC, True),
    ("repack -q -Adf", GUARD_GC, True),
    ("pack-refs --all", REPO, True),
    ("prune-packed", REPO, True),
    ("update-server-info", REPO, True),
    ("filter-branch -f --msg-filter cat side", REPO, True),
    ("fast-import --quiet", REPO, True),
    ("replace", R, True),
    ("replace -l", R, True),
    ("replace side main", W, True),
    ("replace -d side", REPO, True),
    ("symbolic-ref HEAD", R, True),
    ("symbolic-ref refs/heads/sym refs/heads/main", W, True),
    ("symbolic-ref -d refs/heads/sym", REPO, True),
    ("update-ref refs/heads/extra HEAD", REFS_ONLY, True),
    ("update-ref --stdin", REFS_ONLY, True),
    ("update-ref -d refs/heads/extra", DEL_REF, True),
    ("update-ref -m why -d refs/gitxact/x", DEL_REF, True),
]


def _expected_locks(rule: Rule, worktrees: list[str]) -> set[tuple[str, str]]:
    if rule.lock in (rules.READ_ONLY, rules.REFS):
        return set()
    if rule.lock == REPOSITORY:  # the whole repository: its lock and every worktree's (as they were)
        return {("repo", "exclusive")} | {(f"worktree.{i}", "exclusive") for i in worktrees}
    return {("worktree.main", "exclusive")} | {(f"resource.{r}", "exclusive") for r in rule.resources}


@pytest.fixture
def lab(repo: Path, tmp_path: Path) -> Path:
    """A repository with a remote, a tag, a side branch, notes and a spare worktree."""
    git("clone", "-q", "--bare", str(repo), str(tmp_path / "origin.git"), cwd=tmp_path)
    git("remote", "add", "origin", str(tmp_path / "origin.git"), cwd=repo)
    git("fetch", "-q", "origin", cwd=repo)
    git("tag", "v1", cwd=repo)
    git("switch", "-q", "-c", "side", cwd=repo)
    (repo / "side.txt").write_text("side\n")
    git("add", "side.txt", cwd=repo)
    git("commit", "-q", "-m", "side", cwd=repo)
    git("switch", "-q", "main", cwd=repo)
    git("notes", "add", "-m", "a note", cwd=repo)
    (tmp_path / "scratch").mkdir()
    git("worktree", "add", "-q", str(tmp_path / "scratch" / "spare"), cwd=repo)
    stat = (repo / "README").stat()
    os.utime(repo / "README", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # stat-dirty index
    return repo


def _records(repo: Path) -> list[dict[str, object]]:
    path = repo / ".git" / "gitxact" / "events" / "events.log"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r["ev"] == "lock"]


def _fingerprint(repo: Path) -> tuple[str, bytes, int, bytes]:
    refs = git("for-each-ref", "--format=%(refname) %(objectname) %(symref)", cwd=repo)
    index = repo / ".git" / "index"
    return refs, index.read_bytes(), index.stat().st_mtime_ns, (repo / ".git" / "config").read_bytes()


@pytest.mark.parametrize(("shape", "expected", "run"), SHAPES, ids=[s[0] for s in SHAPES])
def test_row(lab: Path, tmp_path: Path, shape: str, expected: Rule, run: bool) -> None:
    words = shlex.split(shape.replace(T, str(tmp_path / "scratch")))
    invocation = parse(words)
    assert rules.rule_for(invocation) == expected
    if not run:
        return
    before_records = len(_records(lab))
    worktrees = worktree_ids(lab / ".git")
    before = _fingerprint(lab)
    env = {
        **os.environ,
        "GIT_EDITOR": "true",
        "GIT_SEQUENCE_EDITOR": "true",
        "GIT_PAGER": "cat",
        "FILTER_BRANCH_SQUELCH_WARNING": "1",
        "GIT_TERMINAL_PROMPT": "0",
    }
    proc = subprocess.run(
        [*GX, *words], cwd=lab, env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=120, check=False
    )
    assert b"Traceback" not in proc.stderr, proc.stderr
    taken = {(str(r["lock"]), str(r["mode"])) for r in _records(lab)[before_records:]}
    assert taken == _expected_locks(expected, worktrees), proc.stderr
    if expected == R:
        assert _fingerprint(lab) == before, "a read-only command changed the repository"
    if expected == R_REFRESH:  # at most git's stat cache in the index, like plain git
        after = _fingerprint(lab)
        assert (after[0], after[3]) == (before[0], before[3]), "status changed refs or config"


def test_every_table_row_has_a_shape() -> None:
    covered: set[str] = set()
    for shape, _, _ in SHAPES:
        invocation = parse(shlex.split(shape))
        if invocation.command is not None:
            covered.add(invocation.command)
            entry = rules.TABLE.get(invocation.command)
            if isinstance(entry, rules.Sub):
                words = [w for w in invocation.args if not w.startswith("-")]
                covered.add(f"{invocation.command} {words[0] if words else ''}".strip())
    missing = [name for name in rules.TABLE if name not in covered]
    for name, entry in rules.TABLE.items():
        if isinstance(entry, rules.Sub):
            missing += [f"{name} {sub}" for sub in entry.rules if f"{name} {sub}" not in covered]
    assert not missing


def test_every_git_builtin_is_in_the_table() -> None:
    """A git newer than the table still works (unknown = worktree lock); this says which rows to add."""
    builtins = git("--list-cmds=builtins", cwd=Path("/")).split()
    assert [name for name in builtins if name not in rules.TABLE] == []


def test_status_refreshes_like_git_but_other_read_only_commands_never_do(lab: Path) -> None:
    """GIT_OPTIONAL_LOCKS=0 for read-only commands; status alone refreshes, when its worktree is free
    (tests/test_gx.py holds the lock to show the refresh then skipped)."""
    index = lab / ".git" / "index"
    before = index.stat().st_mtime_ns
    subprocess.run([*GX, "log", "-1"], cwd=lab, capture_output=True, check=True)
    assert index.stat().st_mtime_ns == before
    subprocess.run([*GX, "status"], cwd=lab, capture_output=True, check=True)
    assert index.stat().st_mtime_ns != before, "the stat-dirty index was refreshed, as git status does"


def test_guard_kinds_are_named_consistently() -> None:
    kinds = {rule.guard for rule in (GUARD_GC, LEASED_WT, DEL_BRANCH, DEL_REF)}
    assert kinds == {ANY_LEASE, LEASED_WORKTREE, LEASED_BRANCH, PROTECTED_REF}
    assert GUARD_GC.kind == "guarded"
    assert W.kind == "worktree"
    assert R.kind == "read-only"
    assert REPO.kind == "repository"
