"""Native hooks: install/uninstall with chaining, and the rules they enforce on raw git."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.leases import acquire, release
from support.proc import GITXACT, GX, ROOT, assert_clean_error, git, gitxact, run

HOOKS = ("pre-commit", "pre-auto-gc", "reference-transaction")


def install(where: Path) -> None:
    proc = gitxact("hooks", "install", cwd=where)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture
def leased(repo: Path) -> Path:
    """repo with hooks installed and alice's lease; returns alice's worktree."""
    install(repo)
    return acquire(repo, "alice")


# -- install / uninstall ---------------------------------------------------------------


def test_install_is_idempotent_and_uninstall_removes(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    first = gitxact("hooks", "install", "--json", cwd=repo)
    assert [h["action"] for h in json.loads(first.stdout)["hooks"]] == ["installed"] * 3
    texts = {name: (hooks / name).read_text() for name in HOOKS}
    second = gitxact("hooks", "install", "--json", cwd=repo)
    assert [h["action"] for h in json.loads(second.stdout)["hooks"]] == ["unchanged"] * 3
    assert {name: (hooks / name).read_text() for name in HOOKS} == texts
    assert all(os.access(hooks / name, os.X_OK) for name in HOOKS)
    assert sys.executable in texts["pre-commit"]
    assert gitxact("hooks", "uninstall", cwd=repo).returncode == 0
    assert not any((hooks / name).exists() for name in HOOKS)


def test_existing_hooks_are_chained_and_restored(repo: Path, tmp_path: Path) -> None:
    hooks = repo / ".git" / "hooks"
    log = tmp_path / "log"
    original = f'#!/bin/sh\necho "pre-commit ran" >> {log}\nexit "${{FAIL:-0}}"\n'
    (hooks / "pre-commit").write_text(original)
    (hooks / "pre-commit").chmod(0o755)
    tx = f'#!/bin/sh\n{{ echo "tx $1"; cat; }} >> {log}\n'
    (hooks / "reference-transaction").write_text(tx)
    (hooks / "reference-transaction").chmod(0o755)
    install(repo)
    assert (hooks / "pre-commit.gitxact-chained").read_text() == original
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo).strip()
    lines = log.read_text().splitlines()
    assert lines[0] == "pre-commit ran"
    assert "tx prepared" in lines
    assert "tx committed" in lines
    assert f"{'0' * 40} {head} refs/heads/main" not in lines  # not a creation
    assert any(line.endswith(" refs/heads/main") and head in line for line in lines)
    failing = run(["git", "commit", "-q", "--allow-empty", "-m", "two"], repo, {"FAIL": "7"})
    assert failing.returncode == 1, "the chained hook's failure stops the commit"
    install(repo)  # again: nothing moves
    assert (hooks / "pre-commit.gitxact-chained").read_text() == original
    assert gitxact("hooks", "uninstall", cwd=repo).returncode == 0
    assert (hooks / "pre-commit").read_text() == original
    assert (hooks / "reference-transaction").read_text() == tx
    assert not (hooks / "pre-commit.gitxact-chained").exists()


def test_foreign_hook_over_a_chained_one_is_not_clobbered(repo: Path) -> None:
    hooks = repo / ".git" / "hooks"
    install(repo)
    (hooks / "pre-commit.gitxact-chained").write_text("#!/bin/sh\n")
    (hooks / "pre-commit").write_text("#!/bin/sh\necho another tool\n")
    proc = gitxact("hooks", "install", cwd=repo)
    assert_clean_error(proc, 1)
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\necho another tool\n"
    assert gitxact("hooks", "uninstall", cwd=repo).returncode == 0
    assert (hooks / "pre-commit").read_text() == "#!/bin/sh\necho another tool\n", "never removes a foreign hook"


def test_core_hooks_path_and_linked_worktrees(repo: Path) -> None:
    alice = acquire(repo, "alice")
    git("config", "core.hooksPath", ".githooks", cwd=repo)
    install(alice)  # from a linked worktree, a relative hooksPath is that worktree's
    assert (alice / ".githooks" / "pre-commit").exists()
    git("config", "--unset", "core.hooksPath", cwd=repo)
    install(alice)
    assert (repo / ".git" / "hooks" / "pre-commit").exists(), "the common hooks folder serves every worktree"


# -- pre-commit --------------------------------------------------------------------------


def test_commit_by_another_agent_in_a_leased_worktree_is_refused(leased: Path) -> None:
    (leased / "work.txt").write_text("x\n")
    git("add", "work.txt", cwd=leased)
    bob = run(["git", "commit", "-q", "-m", "bob's"], leased, {"GITXACT_AGENT": "bob"})
    assert bob.returncode == 1
    assert "leased to 'alice'" in bob.stderr
    assert "GITXACT_AGENT='bob'" in bob.stderr
    via_gx = run([*GX, "commit", "-q", "-a", "-m", "bob's"], leased, {"GITXACT_AGENT": "bob"})
    assert via_gx.returncode == 1, "GIT_INDEX_FILE=index.lock during commit -a: still refused at once"
    alice = run(["git", "commit", "-q", "-m", "alice's"], leased, {"GITXACT_AGENT": "alice"})
    assert alice.returncode == 0, alice.stderr
    (leased / "work.txt").write_text("y\n")
    nobody = run(["git", "commit", "-q", "-a", "-m", "a person's"], leased)
    assert nobody.returncode == 0, nobody.stderr
    assert git("log", "--format=%s", cwd=leased).split("\n")[:2] == ["a person's", "alice's"]


def test_agents_commit_freely_outside_leased_worktrees(leased: Path, repo: Path) -> None:
    proc = run(["git", "commit", "-q", "--allow-empty", "-m", "main"], repo, {"GITXACT_AGENT": "bob"})
    assert proc.returncode == 0, proc.stderr


def test_hook_under_gx_commit_inherits_the_locks(leased: Path, repo: Path, tmp_path: Path) -> None:
    """A pre-commit hook that itself runs gx/gitxact must not wait for its own parent."""
    git("config", "gitxact.lockTimeout", "5", cwd=repo)
    hooks = repo / ".git" / "hooks"
    gx = " ".join([sys.executable, "-c", "'import sys; from gitxact.gx.main import main; sys.exit(main())'"])
    gxa = " ".join([*GITXACT[:1], "-m", "gitxact"])
    (hooks / "pre-commit.gitxact-chained").write_text(
        f"#!/bin/sh\nset -e\necho extra > extra.txt\n{gx} add extra.txt\n{gxa} tracker incr hooks.ran >/dev/null\n"
    )
    (hooks / "pre-commit.gitxact-chained").chmod(0o755)
    (leased / "work.txt").write_text("x\n")
    git("add", "work.txt", cwd=leased)
    proc = run([*GX, "commit", "-q", "-m", "with hook"], leased, {"GITXACT_AGENT": "alice"})
    assert proc.returncode == 0, proc.stderr
    assert sorted(git("show", "--name-only", "--format=", "HEAD", cwd=leased).split()) == ["extra.txt", "work.txt"]
    assert gitxact("tracker", "get", "hooks.ran", cwd=repo).stdout.strip() == "1"


# -- reference-transaction ---------------------------------------------------------------


def test_raw_deletion_of_a_leased_branch_is_aborted(leased: Path, repo: Path) -> None:
    git("switch", "-q", "--detach", cwd=leased)  # else git itself refuses branch -D
    for argv in (
        ["branch", "-D", "gitxact/alice"],
        ["update-ref", "-d", "refs/heads/gitxact/alice"],
        ["push", ".", ":gitxact/alice"],  # receive-pack runs the hook too
    ):
        proc = run(["git", *argv], repo)
        assert proc.returncode != 0
        assert "gitxact: ref update refused" in proc.stderr
        assert "leased to 'alice'" in proc.stderr
    assert git("rev-parse", "--verify", "-q", "gitxact/alice", cwd=repo).strip()
    release(repo, "alice")
    assert run(["git", "branch", "-D", "gitxact/alice"], repo).returncode == 0


def test_update_of_a_leased_branch_by_another_agent_is_aborted(leased: Path, repo: Path) -> None:
    git("commit", "-q", "--allow-empty", "-m", "elsewhere", cwd=repo)
    target = ["update-ref", "refs/heads/gitxact/alice", "main"]
    bob = run(["git", *target], repo, {"GITXACT_AGENT": "bob"})
    assert bob.returncode != 0
    assert "GITXACT_AGENT='bob'" in bob.stderr
    assert git("rev-parse", "gitxact/alice", cwd=repo) != git("rev-parse", "main", cwd=repo)
    assert run(["git", *target], repo, {"GITXACT_AGENT": "alice"}).returncode == 0
    assert git("rev-parse", "gitxact/alice", cwd=repo) == git("rev-parse", "main", cwd=repo)


def test_gitxact_refs_are_deleted_only_by_gitxact(repo: Path) -> None:
    install(repo)
    for name in ("a", "b", "c"):
        git("update-ref", f"refs/gitxact/snapshots/{name}", "HEAD", cwd=repo)
    raw = run(["git", "update-ref", "-d", "refs/gitxact/snapshots/a"], repo)
    assert raw.returncode != 0
    assert "only gitxact deletes its own refs" in raw.stderr
    via_gx = run([*GX, "update-ref", "-d", "refs/gitxact/snapshots/a"], repo)
    assert via_gx.returncode != 0, "gx passes the user's command through: not gitxact's own change"
    by_gitxact = run(
        [
            sys.executable,
            "-c",
            "from gitxact.git import run as git; git.run(['update-ref', '-d', 'refs/gitxact/snapshots/a'], '.')",
        ],
        repo,
    )
    assert by_gitxact.returncode == 0, by_gitxact.stderr
    refs = git("for-each-ref", "--format=%(refname)", "refs/gitxact", cwd=repo).split()
    assert refs == ["refs/gitxact/snapshots/b", "refs/gitxact/snapshots/c"]


def test_pack_refs_and_gc_keep_working_with_protected_refs(repo: Path) -> None:
    install(repo)
    git("update-ref", "refs/gitxact/snapshots/x", "HEAD", cwd=repo)
    for argv in (["pack-refs", "--all"], ["gc", "-q"]):
        proc = run(["git", *argv], repo)
        assert proc.returncode == 0, proc.stderr
        assert "refused" not in proc.stderr
    assert git("for-each-ref", "--format=%(refname)", "refs/gitxact", cwd=repo).split() == ["refs/gitxact/snapshots/x"]
    assert (repo / ".git" / "packed-refs").read_text().count("refs/gitxact/snapshots/x") == 1


# -- pre-auto-gc ---------------------------------------------------------------------------


def _loose_objects(repo: Path, count: int = 1500) -> None:  # ~6 of them land in objects/17
    """Enough loose objects that `gc --auto` with gc.auto=1 wants to run (git samples objects/17)."""
    folder = repo.parent / "blobs"
    folder.mkdir()
    for i in range(count):
        (folder / str(i)).write_text(f"blob {i}\n")
    git("hash-object", "-w", *(str(folder / str(i)) for i in range(count)), cwd=repo)


def test_auto_gc_refused_while_leased(leased: Path, repo: Path) -> None:
    _loose_objects(repo)
    git("config", "gc.auto", "1", cwd=repo)
    git("config", "gc.autoDetach", "false", cwd=repo)
    proc = run(["git", "gc", "--auto"], repo)
    assert "auto-gc skipped while 1 lease(s) are active" in proc.stderr
    assert "alice" in proc.stderr
    assert "packs: 0" in git("count-objects", "-v", cwd=repo)
    release(repo, "alice")
    proc = run(["git", "gc", "--auto"], repo)
    assert proc.returncode == 0
    assert "Auto packing the repository" in proc.stderr
    assert "packs: 1" in git("count-objects", "-v", cwd=repo)


# -- damaged or missing pieces -----------------------------------------------------------------


def test_unverifiable_leases_warn_for_commits_and_stop_auto_gc(leased: Path, repo: Path) -> None:
    state = repo / ".git" / "gitxact" / "state"
    (state / "leases.json").write_text("{}")
    (state / "leases.json.bak").unlink(missing_ok=True)
    proc = run(["git", "commit", "-q", "--allow-empty", "-m", "x"], leased, {"GITXACT_AGENT": "bob"})
    assert proc.returncode == 0
    assert "lease checks skipped" in proc.stderr
    _loose_objects(repo)
    git("config", "gc.auto", "1", cwd=repo)
    git("config", "gc.autoDetach", "false", cwd=repo)
    assert "auto-gc skipped" in run(["git", "gc", "--auto"], repo).stderr


def test_falls_back_to_gitxact_on_path_then_warns(leased: Path, repo: Path) -> None:
    for name in HOOKS:
        hook = repo / ".git" / "hooks" / name
        hook.write_text(hook.read_text().replace(f"PY='{sys.executable}'", "PY='/nonexistent/python'"))
    venv_bin = str(Path(sys.executable).parent)
    env = {"GITXACT_AGENT": "bob", "PATH": f"{venv_bin}:/usr/bin:/bin"}
    if not (Path(venv_bin) / "gitxact").exists():
        pytest.skip("gitxact is not installed as a console script next to this python")
    refused = run(["git", "commit", "-q", "--allow-empty", "-m", "x"], leased, env)
    assert refused.returncode == 1
    assert "leased to 'alice'" in refused.stderr
    lost = run(["git", "commit", "-q", "--allow-empty", "-m", "x"], leased, {**env, "PATH": "/usr/bin:/bin"})
    assert lost.returncode == 0
    assert "cannot find gitxact" in lost.stderr


def test_the_hook_code_needs_only_the_standard_library() -> None:
    """The hooks run it with python -I -S: no site-packages, so no pydantic, click or filelock."""
    code = "import sys; sys.path.insert(0, sys.argv[1]); import gitxact.hooks.policy; print(sorted(sys.modules))"
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code, str(ROOT)], capture_output=True, text=True, check=True
    )
    assert "pydantic" not in proc.stdout
