"""Issue 29: an agent's whole loop through ``gitxact mcp``, driven by the official MCP client.

Lease, edit, commit, diff, log, sync after the target moved, a sync that conflicts
(aborted: the worktree as before; then kept and resolved), conflicts, a refused land's
structured reason, land, release; hostile arguments refused before anything runs; a
session that ends without release leaves a lease that reap ends, its work in a snapshot.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.leases import acquire_json
from support.proc import git, gitxact, owner_process, wait_for_file
from support.tx import fingerprint

pytest.importorskip("mcp")

from mcp import ClientSession
from test_mcp import call, session

from gitxact.mcp.catalog import HINTS, TOOLS


async def refusal(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """A tool call that must be a tool error; its structured content (with ``error``)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, (tool, result.structured_content)
    assert result.structured_content is not None, (tool, result.content)
    error = result.structured_content["error"]
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert f"reason {error['reason']}]" in text, text
    assert "Traceback" not in text
    return result.structured_content


def commit_on_main(repo: Path, name: str, content: str) -> str:
    (repo / name).write_text(content)
    git("add", name, cwd=repo)
    git("commit", "-q", "-m", f"main: {name}", cwd=repo)
    return git("rev-parse", "main", cwd=repo).strip()


def test_an_agents_whole_loop_through_mcp(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    commit_on_main(repo, "shared.txt", "one\n")

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            listed = {tool.name: tool for tool in (await client.list_tools()).tools}
            assert set(listed) == set(TOOLS)
            for name, (read_only, destructive, idempotent) in HINTS.items():
                hints = listed[name].annotations
                assert hints is not None
                assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint) == (
                    read_only,
                    destructive,
                    idempotent,
                ), name
                assert listed[name].output_schema is not None, name
            assert listed["diff"].annotations.read_only_hint is True  # type: ignore[union-attr]
            assert listed["release"].annotations.destructive_hint is True  # type: ignore[union-attr]

            lease = await call(client, "lease")
            worktree = Path(lease["path"])
            mine = await call(client, "status")
            assert mine["lease"]["branch"] == "gitxact/agent-1"
            assert (mine["lease"]["ahead"], mine["transaction"], mine["queue"], mine["fleet"]) == (0, None, [], None)

            # edit, commit, diff, log
            (worktree / "feature.txt").write_text("the feature\n")
            committed = await call(client, "commit", paths=["feature.txt"], message="add the feature")
            assert committed["paths"] == ["feature.txt"]
            assert git("rev-parse", "HEAD", cwd=worktree).strip() == committed["commit"]
            assert git("status", "--porcelain", cwd=worktree) == ""
            (worktree / "feature.txt").write_text("the feature, better\n")
            diff = await call(client, "diff")
            assert [f["path"] for f in diff["files"]] == ["feature.txt"]
            assert "+the feature, better" in diff["patch"]
            assert not diff["truncated"]
            small = await call(client, "diff", max_bytes=10)
            assert (small["truncated"], len(small["patch"].encode())) == (True, 10)
            await call(client, "commit", paths=["feature.txt"], message="better")
            logged = await call(client, "log")
            assert [c["subject"] for c in logged["commits"]] == ["better", "add the feature"]
            assert (await call(client, "log", max_count=1))["truncated"] is True
            assert (await call(client, "status"))["lease"]["ahead"] == 2

            # the target moves: sync brings the branch up to date
            moved = commit_on_main(repo, "other.txt", "someone else's\n")
            synced = await call(client, "sync", onto="main")
            assert synced["synced"] is True
            assert git("merge-base", "--is-ancestor", moved, "HEAD", cwd=worktree) == ""
            assert (worktree / "other.txt").exists()

            # a conflict: sync aborts it, the worktree exactly as before
            (worktree / "shared.txt").write_text("agent-1's two\n")
            await call(client, "commit", paths=["shared.txt"], message="shared: mine")
            commit_on_main(repo, "shared.txt", "main's two\n")
            head = git("rev-parse", "HEAD", cwd=worktree)
            conflicted = await refusal(client, "sync", onto="main")
            assert conflicted["error"]["reason"] == "conflict"
            assert (conflicted["conflicts"], conflicted["kept"]) == (["shared.txt"], False)
            assert git("rev-parse", "HEAD", cwd=worktree) == head
            assert git("status", "--porcelain", cwd=worktree) == ""
            assert (worktree / "shared.txt").read_text() == "agent-1's two\n"

            # foresight and a refused land, both structured
            foresight = await call(client, "conflicts", onto="main")
            assert foresight["clean"] is False
            assert [(c["agent"], c["paths"]) for c in foresight["against_target"]] == [("agent-1", ["shared.txt"])]
            dry = await call(client, "land", onto="main", dry_run=True)
            assert (dry["would_land"], dry["conflicts"]) == (False, ["shared.txt"])
            refused_land = await refusal(client, "land", onto="main")
            assert (refused_land["error"]["reason"], refused_land["error"]["exit_code"]) == ("conflict", 3)
            assert (refused_land["state"], refused_land["conflicts"]) == ("refused", ["shared.txt"])
            assert refused_land["conflict_commits"] == [git("rev-parse", "main", cwd=repo).strip()]
            assert refused_land["next_steps"]
            assert refused_land["error"]["next_tools"][0] == 'sync(onto="main", keep_conflict=true)'

            # kept to resolve, resolved, continued; then it lands
            kept = await refusal(client, "sync", onto="main", keep_conflict=True)
            assert (kept["error"]["reason"], kept["kept"]) == ("conflict", True)
            assert "<<<<<<<" in (worktree / "shared.txt").read_text()
            markers = await refusal(client, "sync_continue")
            assert markers["error"]["reason"] == "conflict"
            midway = await refusal(client, "commit", paths=["shared.txt"], message="m")
            assert midway["error"]["reason"] == "in_progress"
            (worktree / "shared.txt").write_text("main's two, and agent-1's\n")
            resumed = await call(client, "sync_continue")
            assert resumed["synced"] is True
            failing = await refusal(client, "land", onto="main", check="false")
            assert (failing["error"]["reason"], failing["state"]) == ("check_failed", "refused")
            assert failing["check_log"]
            assert git("show", "main:shared.txt", cwd=repo) == "main's two\n", "the target did not move"
            landed = await call(client, "land", onto="main")
            assert (landed["state"], landed["target"]) == ("landed", "main")
            assert git("show", "main:shared.txt", cwd=repo) == "main's two, and agent-1's\n"
            assert git("show", "main:feature.txt", cwd=repo) == "the feature, better\n"

            released = await call(client, "release")
            assert released["agent"] == "agent-1"
            for tool in ("commit", "renew", "release"):
                arguments = {"paths": ["x"], "message": "m"} if tool == "commit" else {}
                gone = await refusal(client, tool, **arguments)
                assert gone["error"]["reason"] == "lease_lost", (tool, gone)

    asyncio.run(scenario())
    assert git("fsck", "--no-progress", "--no-dangling", cwd=repo) == ""


def test_hostile_arguments_are_refused_before_anything_runs(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not the agent's\n")
    written = tmp_path / "written-by-git"

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            assert (await refusal(client, "commit", paths=["a.txt"], message="m"))["error"]["reason"] == "no_lease"
            worktree = Path((await call(client, "lease"))["path"])
            (worktree / "link").symlink_to(outside)
            head = git("rev-parse", "HEAD", cwd=worktree)
            cases: list[tuple[str, dict[str, Any]]] = [
                ("commit", {"paths": ["-A"], "message": "m"}),
                ("commit", {"paths": ["--pathspec-from-file=/etc/passwd"], "message": "m"}),
                ("commit", {"paths": [], "message": "m"}),
                ("commit", {"paths": ["a.txt"], "message": ""}),
                ("commit", {"paths": ["../outside/secret.txt"], "message": "m"}),
                ("commit", {"paths": [str(outside / "secret.txt")], "message": "m"}),
                ("commit", {"paths": ["link/secret.txt"], "message": "m"}),
                ("commit", {"paths": [".git/config"], "message": "m"}),
                ("diff", {"ref": f"--output={written}"}),
                ("diff", {"paths": ["-p"]}),
                ("diff", {"max_bytes": 10**9}),
                ("log", {"ref": "--all"}),
                ("log", {"max_count": -1}),
                ("sync", {"onto": "-main"}),
                ("sync", {"onto": "main", "strategy": "octopus"}),
                ("land", {"onto": "--force"}),
                ("lease", {"branch": "-b"}),
                ("snapshots_restore", {"name": "--force"}),
                ("conflicts", {"onto": "-x"}),
            ]
            for tool, arguments in cases:
                answer = await refusal(client, tool, **arguments)
                assert answer["error"]["reason"] == "invalid_argument", (tool, arguments, answer)
                assert answer["error"]["exit_code"] == 2, (tool, arguments)
            assert (await refusal(client, "diff", ref="no-such-ref"))["error"]["reason"] == "invalid_argument"
            assert (await refusal(client, "no_such_tool"))["error"]["reason"] == "invalid_argument"
            assert not written.exists()
            assert git("rev-parse", "HEAD", cwd=worktree) == head
            assert git("status", "--porcelain", "--untracked-files=no", cwd=worktree) == ""
            assert (outside / "secret.txt").read_text() == "not the agent's\n"
            await call(client, "release", save_dirty=True)

    asyncio.run(scenario())


def test_a_session_that_ends_without_release_is_reaped_with_its_work_saved(repo: Path) -> None:
    """The lease's owner is the server process: the session ends, the owner is dead, reap ends it."""
    assert gitxact("init", cwd=repo).returncode == 0

    async def scenario() -> tuple[str, int]:
        async with session(repo, "agent-1") as client:
            lease = await call(client, "lease")
            (Path(lease["path"]) / "draft.txt").write_text("work in progress\n")
            owner = lease["owner_pid"]
            assert owner != os.getpid(), "the server process owns the lease, not its client"
            return lease["path"], owner

    path, owner = asyncio.run(scenario())
    with pytest.raises(ProcessLookupError):  # the server ended with its session
        os.kill(owner, 0)
    reaped = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    ended = [item for item in reaped["ended"] if item["agent"] == "agent-1"]
    assert len(ended) == 1, reaped
    assert ended[0]["snapshot_ref"], ended
    assert git("show", f"{ended[0]['snapshot_ref']}:draft.txt", cwd=repo) == "work in progress\n"
    assert not Path(path).exists()
    assert json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"] == []


def test_the_runtime_can_name_the_process_its_leases_live_with(repo: Path) -> None:
    """``--owner-pid``: the lease outlives the server while that process lives, and ends with it."""
    assert gitxact("init", cwd=repo).returncode == 0

    async def scenario(owner: int) -> dict[str, Any]:
        async with session(repo, "agent-1", "--owner-pid", str(owner)) as client:
            lease = await call(client, "lease")
            (Path(lease["path"]) / "draft.txt").write_text("kept while the runtime lives\n")
            return lease

    with owner_process() as runtime:
        lease = asyncio.run(scenario(runtime.pid))
        assert lease["owner_pid"] == runtime.pid
        reaped = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
        assert "agent-1" in reaped["kept"], reaped
        assert Path(lease["path"]).is_dir()
    reaped = json.loads(gitxact("worktree", "reap", "--json", cwd=repo).stdout)
    assert [item["agent"] for item in reaped["ended"]] == ["agent-1"]
    assert git("show", f"{reaped['ended'][0]['snapshot_ref']}:draft.txt", cwd=repo) == "kept while the runtime lives\n"


def test_snapshots_and_recover_act_on_the_agents_own_work_only(repo: Path, tmp_path: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    # bob's work, kept in a snapshot; bob's lease then left with a dead owner
    bob = acquire_json(repo, "bob")
    (Path(str(bob["path"])) / "bobs.txt").write_text("bob's draft\n")
    ended = gitxact("worktree", "release", "bob", "--force", "--json", cwd=repo)
    assert ended.returncode == 0, ended.stderr
    bobs_snapshot = json.loads(ended.stdout)["snapshot_ref"].removeprefix("refs/gitxact/snapshots/")
    with owner_process() as doomed:
        acquire_json(repo, "carol", "--owner-pid", str(doomed.pid))
    ready = tmp_path / "ready"

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            worktree = Path((await call(client, "lease"))["path"])
            (worktree / "draft.txt").write_text("agent-1's draft\n")
            await call(client, "release", save_dirty=True)
            worktree = Path((await call(client, "lease"))["path"])
            listed = await call(client, "snapshots_list")
            assert [(s["agent"], s["kind"]) for s in listed["snapshots"]] == [("agent-1", "released")]
            restored = await call(client, "snapshots_restore", name=listed["snapshots"][0]["name"])
            assert restored["into"] == str(worktree)
            assert (worktree / "draft.txt").read_text() == "agent-1's draft\n"
            theirs = await refusal(client, "snapshots_restore", name=bobs_snapshot)
            assert theirs["error"]["reason"] == "not_yours"
            assert not (worktree / "bobs.txt").exists()

            # A transaction whose holder was SIGKILLed in the agent's worktree: recover rolls it back.
            git("add", "draft.txt", cwd=worktree)
            git("commit", "-q", "-m", "draft", cwd=worktree)
            before = fingerprint(worktree)
            holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(worktree), str(ready)])
            try:
                wait_for_file(ready, "the holder's commit", holder)
            finally:
                holder.kill()
                holder.wait()
            assert fingerprint(worktree) != before
            recovered = await call(client, "recover")
            assert recovered["ok"] is True
            assert [step["name"] for step in recovered["steps"]] == ["journals"]
            assert recovered["steps"][0]["actions"], recovered
            assert fingerprint(worktree) == before
            leases = json.loads(gitxact("worktree", "list", "--json", cwd=repo).stdout)["leases"]
            assert "carol" in {item["agent"] for item in leases}, (
                "another agent's dead lease is not this agent's to end"
            )
            await call(client, "release")

    asyncio.run(scenario())


#: A library transaction in the worktree argv[1] that commits, says so, and waits to be killed.
HOLDER = """
import pathlib, subprocess, sys, time
from gitxact import Workspace
worktree = pathlib.Path(sys.argv[1])
with Workspace(worktree, agent="agent-1").transaction():
    (worktree / "x.txt").write_text("x")
    subprocess.run(["git", "add", "x.txt"], cwd=worktree, check=True)
    subprocess.run(["git", "commit", "-qm", "x"], cwd=worktree, check=True)
    pathlib.Path(sys.argv[2]).touch()
    time.sleep(120)
"""


def test_a_sync_that_git_stops_for_an_untracked_file_leaves_everything_as_it_was(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            worktree = Path((await call(client, "lease"))["path"])
            (worktree / "mine.txt").write_text("committed\n")
            await call(client, "commit", paths=["mine.txt"], message="mine")
            (worktree / "new.txt").write_text("my untracked notes\n")
            commit_on_main(repo, "new.txt", "main's new file\n")
            head = git("rev-parse", "HEAD", cwd=worktree)
            for strategy in ("rebase", "merge"):
                stopped = await refusal(client, "sync", onto="main", strategy=strategy, keep_conflict=True)
                assert stopped["error"]["reason"] in ("git_failed", "refused"), stopped
                assert (stopped["conflicts"], stopped["kept"]) == ([], False)
                assert git("rev-parse", "HEAD", cwd=worktree) == head
                assert (worktree / "new.txt").read_text() == "my untracked notes\n"
                assert git("status", "--porcelain", cwd=worktree) == "?? new.txt\n"
            (worktree / "new.txt").unlink()
            assert (await call(client, "sync", onto="main"))["synced"] is True
            await call(client, "release")

    asyncio.run(scenario())


def test_a_branch_left_by_an_earlier_lease_is_resumed_or_started_fresh_when_asked(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            worktree = Path((await call(client, "lease"))["path"])
            (worktree / "wip.txt").write_text("not landed yet\n")
            tip = (await call(client, "commit", paths=["wip.txt"], message="wip"))["commit"]
            released = await call(client, "release")
            assert released["branch_deleted"] is False
            left = await refusal(client, "lease")
            assert (left["error"]["reason"], left["error"]["exit_code"]) == ("refused", 3)
            assert "left from an earlier lease" in left["error"]["message"]
            resumed = await call(client, "lease", reuse="resume")
            assert (resumed["reused"], resumed["branch_ahead"]) == ("resume", 1)
            assert git("rev-parse", "HEAD", cwd=Path(resumed["path"])).strip() == tip
            await call(client, "release")
            fresh = await call(client, "lease", reuse="fresh")
            assert (
                git("rev-parse", "HEAD", cwd=Path(fresh["path"])).strip() == git("rev-parse", "main", cwd=repo).strip()
            )
            assert tip in git("for-each-ref", "--format=%(objectname)", "refs/heads/gitxact/", cwd=repo), "kept"
            assert (await refusal(client, "lease", reuse="sideways"))["error"]["reason"] == "invalid_argument"
            await call(client, "release")

    asyncio.run(scenario())


def test_two_agents_commit_and_land_at_once_through_their_servers(repo: Path) -> None:
    """Real processes: two servers, five commits each in flight together, then both land."""
    assert gitxact("init", cwd=repo).returncode == 0
    assert gitxact("hooks", "install", cwd=repo).returncode == 0
    base = git("rev-parse", "main", cwd=repo).strip()

    async def work(client: ClientSession, agent: str) -> Path:
        worktree = Path((await call(client, "lease"))["path"])
        for i in range(5):
            (worktree / f"{agent}-{i}.txt").write_text(f"{agent} {i}\n")
            await call(client, "commit", paths=[f"{agent}-{i}.txt"], message=f"{agent} {i}")
        return worktree

    async def scenario() -> None:
        async with session(repo, "alice") as alice, session(repo, "bob") as bob:
            trees = await asyncio.gather(work(alice, "alice"), work(bob, "bob"))
            for worktree, agent in zip(trees, ("alice", "bob"), strict=True):
                subjects = git("log", "--format=%s", f"{base}..HEAD", cwd=worktree).split("\n")[:-1]
                assert subjects == [f"{agent} {i}" for i in reversed(range(5))]
            landed = await asyncio.gather(call(alice, "land", onto="main"), call(bob, "land", onto="main"))
            assert [doc["state"] for doc in landed] == ["landed", "landed"]
            await asyncio.gather(call(alice, "release"), call(bob, "release"))

    asyncio.run(scenario())
    on_main = git("log", "--format=%s", f"{base}..main", cwd=repo).split("\n")[:-1]
    assert sorted(on_main) == sorted(f"{agent} {i}" for agent in ("alice", "bob") for i in range(5))
    assert git("ls-tree", "--name-only", "main", cwd=repo).count(".txt\n") == 10
    git("fsck", "--strict", cwd=repo)


def test_a_refused_commit_leaves_the_index_as_it_was_and_a_made_one_takes_only_its_paths(
    repo: Path, tmp_path: Path
) -> None:
    """One step: a new file, a deleted one and a half-staged one, refused by a pre-commit hook,
    then made. Refused, nothing is staged that was not (not even an intent-to-add entry)."""
    assert gitxact("init", cwd=repo).returncode == 0
    for name in ("gone.txt", "half.txt", "other.txt"):
        (repo / name).write_text(f"{name} one\n")
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "three files", cwd=repo)
    refuse = tmp_path / "refuse"
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\nif [ -e '{refuse}' ]; then echo 'the hook says no' >&2; exit 1; fi\n")
    hook.chmod(0o755)

    async def scenario() -> None:
        async with session(repo, "agent-1") as client:
            worktree = Path((await call(client, "lease"))["path"])
            (worktree / "new").mkdir()
            (worktree / "new" / "file.txt").write_text("new\n")
            (worktree / "gone.txt").unlink()
            (worktree / "half.txt").write_text("half.txt staged\n")
            git("add", "half.txt", cwd=worktree)
            (worktree / "half.txt").write_text("half.txt on disk\n")
            (worktree / "other.txt").write_text("staged, not asked for\n")
            git("add", "other.txt", cwd=worktree)
            head = git("rev-parse", "HEAD", cwd=worktree)
            index = (git("ls-files", "--stage", cwd=worktree), git("status", "--porcelain", cwd=worktree))
            paths = ["new", "gone.txt", "half.txt"]

            refuse.touch()
            refused = await refusal(client, "commit", paths=paths, message="three paths")
            assert refused["error"]["reason"] == "git_failed"
            assert "the hook says no" in refused["error"]["message"]
            assert git("rev-parse", "HEAD", cwd=worktree) == head
            assert (git("ls-files", "--stage", cwd=worktree), git("status", "--porcelain", cwd=worktree)) == index
            assert "?? new/" in index[1]

            refuse.unlink()
            made = await call(client, "commit", paths=paths, message="three paths")
            assert made["parent"] == head.strip()
            changed = git("show", "--name-status", "--format=", "HEAD", cwd=worktree).split("\n")[:-1]
            assert sorted(changed) == ["A\tnew/file.txt", "D\tgone.txt", "M\thalf.txt"]
            assert git("show", "HEAD:half.txt", cwd=worktree) == "half.txt on disk\n", (
                "as on disk, as git commit -- PATHS"
            )
            assert git("status", "--porcelain", cwd=worktree) == "M  other.txt\n", "still staged, and out"

    asyncio.run(scenario())


def test_lease_takes_sparse_folders_and_land_takes_parallel(repo: Path) -> None:
    from gitxact import Workspace
    from gitxact.land.records import LandingFile

    for rel in ("svc/api/app.txt", "svc/web/page.txt"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(f"{rel}\n")
    (repo / ".gitxact.toml").write_text('[lease]\nsparse = ["svc/web"]\n')
    git("add", ".", cwd=repo)
    git("commit", "-q", "-m", "two services; leases sparse on svc/web by default", cwd=repo)
    assert gitxact("init", cwd=repo).returncode == 0

    def files(path: Path) -> set[str]:
        return {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and ".git" not in p.parts}

    async def scenario() -> None:
        async with session(repo, "agent-1") as one, session(repo, "agent-2") as two:
            api = await call(one, "lease", sparse=["svc/api"])
            assert api["sparse"] == ["svc/api"]
            assert files(Path(api["path"])) == {"README", ".gitxact.toml", "svc/api/app.txt"}
            whole = await call(two, "lease", sparse=[])  # [] wins over the file's default, as --no-sparse
            assert whole["sparse"] == []
            assert {"svc/api/app.txt", "svc/web/page.txt"} <= files(Path(whole["path"]))
            bad = await refusal(one, "lease", sparse=["-x"])
            assert bad["error"]["reason"] == "invalid_argument"

            worktree = Path(api["path"])
            # A new path outside the lease's cone makes the add fail half-way: the index as
            # it was all the same (the new path inside the cone is not left intent-to-add).
            for rel in ("svc/api/new.txt", "svc/web/new.txt"):
                (worktree / rel).parent.mkdir(parents=True, exist_ok=True)
                (worktree / rel).write_text(f"{rel}\n")
            index = git("ls-files", "--stage", cwd=worktree)
            await refusal(one, "commit", paths=["svc/api/new.txt", "svc/web/new.txt"], message="both")
            assert git("ls-files", "--stage", cwd=worktree) == index
            (worktree / "svc/api/new.txt").unlink()
            shutil.rmtree(worktree / "svc/web")
            (worktree / "svc/api/app.txt").write_text("svc/api/app.txt v2\n")
            await call(one, "commit", paths=["svc/api/app.txt"], message="api v2")
            zero = await refusal(one, "land", onto="main", parallel=0)
            assert zero["error"]["reason"] == "invalid_argument"
            landed = await call(one, "land", onto="main", check="test -f svc/api/app.txt", parallel=2)
            assert landed["state"] == "landed"
            assert git("show", "main:svc/api/app.txt", cwd=repo) == "svc/api/app.txt v2\n"

    asyncio.run(scenario())
    requests = LandingFile(Workspace(repo)).peek().requests
    assert [(r.branch.removeprefix("refs/heads/"), r.parallel) for r in requests] == [("gitxact/agent-1", 2)]
