"""What counts as integrated (issue 24, part 2): what gitxact lands is landed, and so is what a forge merged.

The user's story: an agent works on its branch, ``gitxact land`` rebases it onto ``main``,
the agent releases, and the same agent is acquired again: no flag, no litter. Branches
merged outside gitxact (cherry-picked, squash-merged) count too. And the one thing a
safety tool must never do: a branch with one commit that did not land is kept,
whatever a record says.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.proc import GITXACT, assert_clean_error, git, gitxact, run_parallel

from gitxact import Workspace
from gitxact.land.store import open_landing
from gitxact.worktrees import landed


def _acquire(repo: Path, agent: str) -> tuple[Path, str]:
    doc = json.loads(gitxact("worktree", "acquire", agent, "--json", cwd=repo).stdout)
    return Path(doc["path"]), doc["token"]


def _commit(where: Path, name: str, text: str, message: str) -> str:
    (where / name).write_text(text)
    git("add", name, cwd=where)
    git("commit", "-q", "-m", message, cwd=where)
    return git("rev-parse", "HEAD", cwd=where).strip()


def _tip(repo: Path, ref: str) -> str:
    return git("rev-parse", "--verify", "-q", ref, cwd=repo, check=False).strip()


def _kept(repo: Path) -> dict[str, dict[str, object]]:
    listed = json.loads(gitxact("worktree", "list", "--branches", "--json", cwd=repo).stdout)
    return {b["branch"]: b for b in listed["branches"]}


def _landed_agent(repo: Path, agent: str = "a2") -> tuple[Path, str, str]:
    """*agent* commits one file, main moves on, the agent lands from its worktree (rebased)."""
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, agent)
    original = _commit(wt, f"{agent}.txt", "agent work\n", f"{agent}: work")
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    proc = gitxact("land", "--onto", "main", "--json", cwd=wt)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["landed_as"] == {original: _tip(repo, "main")}
    assert _tip(repo, "main~1") != original, "rebased: the landed commit is a new one"
    return wt, token, original


@pytest.mark.usefixtures("backend")
def test_land_then_release_then_acquire_needs_no_flag(repo: Path) -> None:
    """On both backends: on PostgreSQL the landing's request is in the shared table."""
    _wt, token, original = _landed_agent(repo)
    main = _tip(repo, "main")
    lf = open_landing(Workspace(repo))
    try:
        request = lf.peek().requests[-1]
    finally:
        lf.close()
    assert request.outcome is not None
    assert request.outcome.landed_as == {original: main}, "the landing record says which commit landed as which"
    released = gitxact("worktree", "release", "a2", "--token", token, cwd=repo)
    assert released.returncode == 0, released.stderr
    assert "branch gitxact/a2 deleted (landed on main)" in released.stdout
    assert _tip(repo, "refs/heads/gitxact/a2") == ""
    assert landed.load(Workspace(repo)) == {}, "the record of a deleted branch goes with it"
    again = gitxact("worktree", "acquire", "a2", "--json", cwd=repo)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert (doc["branch_created"], doc["reused"]) == (True, None)
    assert _tip(repo, "gitxact/a2") == main
    assert (Path(doc["path"]) / "a2.txt").read_text() == "agent work\n", "its work is on main"
    git("fsck", "--strict", cwd=repo)


def test_acquire_starts_a_kept_landed_branch_again_without_a_flag(repo: Path) -> None:
    _wt, token, original = _landed_agent(repo)
    assert gitxact("worktree", "release", "a2", "--token", token, "--keep-branch", cwd=repo).returncode == 0
    assert _tip(repo, "gitxact/a2") == original
    doc = json.loads(gitxact("worktree", "acquire", "a2", "--json", cwd=repo).stdout)
    assert (doc["reused"], doc["branch_integrated"], doc["kept_branch"]) == ("fresh", "landed on main", None)
    assert _tip(repo, "gitxact/a2") == _tip(repo, "main")
    assert git("branch", "--list", "gitxact/*", cwd=repo).split() == ["+", "gitxact/a2"], "no copy of the old tip"


def test_prune_branches_after_a_land(repo: Path) -> None:
    _wt, token, original = _landed_agent(repo)
    assert gitxact("worktree", "release", "a2", "--token", token, "--keep-branch", cwd=repo).returncode == 0
    kept = _kept(repo)["gitxact/a2"]
    assert (kept["merged"], kept["rule"], kept["into"]) == (True, "landed", "main")
    human = gitxact("worktree", "list", "--branches", cwd=repo).stdout
    assert "landed" in human
    done = gitxact("worktree", "prune-branches", "--merged", cwd=repo)
    assert done.returncode == 0, done.stderr
    assert "deleted gitxact/a2 (landed on main)" in done.stdout
    assert _tip(repo, "refs/heads/gitxact/a2") == ""
    assert original not in git("for-each-ref", "--contains", original, cwd=repo, check=False)


def test_a_commit_after_the_landing_is_kept(repo: Path) -> None:
    wt, token, _original = _landed_agent(repo)
    extra = _commit(wt, "more.txt", "not landed\n", "a2: more work after the landing")
    released = gitxact("worktree", "release", "a2", "--token", token, cwd=repo)
    assert released.returncode == 0, released.stderr
    assert "branch gitxact/a2 kept" in released.stdout
    assert _tip(repo, "gitxact/a2") == extra, "unlanded work is never deleted"
    assert _kept(repo)["gitxact/a2"]["merged"] is False
    dry = json.loads(gitxact("worktree", "prune-branches", "--json", cwd=repo).stdout)
    assert dry["deleted"] == []
    assert "gitxact/a2" in dry["kept"]
    refused = gitxact("worktree", "acquire", "a2", cwd=repo)
    assert_clean_error(refused, 3)
    assert "2 commit(s) not on main (1 of them landed already)" in refused.stderr
    assert _tip(repo, "gitxact/a2") == extra


def test_squash_merged_branch_is_integrated(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "s")
    _commit(wt, "one.txt", "1\n", "s: one")
    tip = _commit(wt, "two.txt", "2\n", "s: two")
    assert gitxact("worktree", "release", "s", "--token", token, cwd=repo).returncode == 0
    assert _tip(repo, "gitxact/s") == tip, "not merged yet: kept"
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    git("merge", "-q", "--squash", "gitxact/s", cwd=repo)
    git("commit", "-q", "-m", "squash of s", cwd=repo)
    kept = _kept(repo)["gitxact/s"]
    assert (kept["merged"], kept["rule"], kept["into"]) == (True, "squash-merged", "main")
    assert "squash-merged" in gitxact("worktree", "list", "--branches", cwd=repo).stdout
    done = json.loads(gitxact("worktree", "prune-branches", "--merged", "--json", cwd=repo).stdout)
    assert done["deleted"] == ["gitxact/s"]
    assert done["integrated"] == {"gitxact/s": "squash-merged into main"}
    git("fsck", "--strict", cwd=repo)


def test_rebased_by_cherry_pick_branch_is_integrated(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "c")
    first = _commit(wt, "one.txt", "1\n", "c: one")
    second = _commit(wt, "two.txt", "2\n", "c: two")
    assert gitxact("worktree", "release", "c", "--token", token, "--keep-branch", cwd=repo).returncode == 0
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    git("cherry-pick", first, second, cwd=repo)
    assert _kept(repo)["gitxact/c"]["rule"] == "patches upstream"
    doc = json.loads(gitxact("worktree", "acquire", "c", "--json", cwd=repo).stdout)
    assert doc["branch_integrated"] == "patches upstream in main"
    assert _tip(repo, "gitxact/c") == _tip(repo, "main")


def test_one_patch_not_upstream_keeps_the_branch(repo: Path) -> None:
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "c")
    first = _commit(wt, "one.txt", "1\n", "c: one")
    second = _commit(wt, "two.txt", "2\n", "c: two")
    git("cherry-pick", first, cwd=repo)  # only the first reached main
    assert gitxact("worktree", "release", "c", "--token", token, cwd=repo).returncode == 0
    assert _tip(repo, "gitxact/c") == second
    assert _kept(repo)["gitxact/c"]["merged"] is False


@pytest.mark.parametrize("claim", ["landed-as-main", "its-own-target", "its-own-target-another-name", "an-option"])
def test_a_forged_landing_record_deletes_nothing(repo: Path, tmp_path: Path, claim: str) -> None:
    """Well-formed records claiming unlanded work landed: as main's tip (whose author,
    date and message are not the work's), onto the branch itself (which holds it), or as
    an option git would obey (``--output`` writes a file)."""
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "f")
    tip = _commit(wt, "f.txt", "never landed\n", "f: work")
    main = _tip(repo, "main")
    target, landed_as = {
        "landed-as-main": ("main", main),
        "its-own-target": ("gitxact/f", tip),
        "its-own-target-another-name": ("gitxact/f", tip),
        "an-option": ("main", f"--output={tmp_path / 'written'}"),
    }[claim]
    forged = landed.LandedBranch(
        branch="somebody-else" if claim == "its-own-target-another-name" else "gitxact/f",
        tip=tip,
        target=target,
        ref=f"refs/heads/{target}",
        landed_tip=main if claim == "an-option" else landed_as,
        commits=[landed.LandedCommit(original=tip, landed=landed_as)],
    )
    ws = Workspace(repo)
    file = ws.state_file(landed.FILE_NAME, landed.LandedState)
    with ws.locks.resource(landed.LOCK):  # as a hand-made file would: filed under the branch's name
        file.save(landed.LandedState(branches={"gitxact/f": forged}))
    released = gitxact("worktree", "release", "f", "--token", token, cwd=repo)
    assert released.returncode == 0, released.stderr
    assert _tip(repo, "gitxact/f") == tip
    assert _kept(repo)["gitxact/f"]["merged"] is False
    assert gitxact("worktree", "prune-branches", cwd=repo).returncode == 0
    assert _tip(repo, "gitxact/f") == tip
    assert not (tmp_path / "written").exists()


def test_a_landing_whose_commits_left_main_is_not_landed(repo: Path) -> None:
    """main reset back past the landing: the record no longer holds, the branch is kept."""
    _wt, token, original = _landed_agent(repo)
    git("reset", "-q", "--hard", "main~1", cwd=repo)
    assert gitxact("worktree", "release", "a2", "--token", token, cwd=repo).returncode == 0
    assert _tip(repo, "gitxact/a2") == original
    assert _kept(repo)["gitxact/a2"]["merged"] is False


def _near_lines(repo: Path) -> tuple[Path, str, str]:
    """Agent p changes line 3 of a file, main then line 1: a rebase applies cleanly, but the
    rebased commit's patch (its context) is not the original's, so ``git cherry`` does not
    match it; only the landing record can say it landed."""
    (repo / "f.txt").write_text("one\ntwo\nthree\nfour\n")
    git("add", "f.txt", cwd=repo)
    git("commit", "-q", "-m", "f", cwd=repo)
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "p")
    original = _commit(wt, "f.txt", "one\ntwo\nTHREE\nfour\n", "p: three")
    _commit(repo, "f.txt", "ONE\ntwo\nthree\nfour\n", "main: one")
    return wt, token, original


def test_landed_even_when_the_rebase_changed_the_patch(repo: Path) -> None:
    wt, token, original = _near_lines(repo)
    assert gitxact("land", "--onto", "main", cwd=wt).returncode == 0
    assert (repo / "f.txt").read_text() == "ONE\ntwo\nTHREE\nfour\n"
    assert git("cherry", "main", original, cwd=repo).startswith("+ "), "patch-ids differ"
    assert gitxact("worktree", "release", "p", "--token", token, "--keep-branch", cwd=repo).returncode == 0
    assert _kept(repo)["gitxact/p"]["rule"] == "landed"


def test_a_lander_killed_after_the_move_is_recorded_as_landed_by_recover(repo: Path) -> None:
    """SIGKILL once main moved, before the outcome was written: ``recover`` finishes the
    landing, and writes the landing record the dead lander could not."""
    wt, token, original = _near_lines(repo)
    killed = gitxact("land", "--onto", "main", cwd=wt, env={"GITXACT_TEST_CRASHPOINT": "land-moved"})
    assert killed.returncode in (-9, 137), killed.stderr
    assert git("log", "-1", "--format=%s", "main", cwd=repo).strip() == "p: three", "main had moved"
    assert "gitxact/p" not in landed.load(Workspace(repo))
    assert gitxact("recover", cwd=repo).returncode == 0
    assert landed.load(Workspace(repo))["gitxact/p"].commits[0].original == original
    released = gitxact("worktree", "release", "p", "--token", token, cwd=repo)
    assert "branch gitxact/p deleted (landed on main)" in released.stdout, released.stdout
    git("fsck", "--strict", cwd=repo)


def test_a_branch_landed_twice_is_landed(repo: Path) -> None:
    """Land, work on, land again: the second landing rebases only the new commit; the
    record keeps the first one's, so the whole branch is known as landed."""
    wt, token, _original = _landed_agent(repo)
    _commit(wt, "more.txt", "more\n", "a2: more")
    _commit(repo, "main2.txt", "main again\n", "main moves on again")
    assert gitxact("land", "--onto", "main", cwd=wt).returncode == 0
    record = landed.load(Workspace(repo))["gitxact/a2"]
    assert len(record.commits) == 2
    released = gitxact("worktree", "release", "a2", "--token", token, cwd=repo)
    assert "branch gitxact/a2 deleted (landed on main)" in released.stdout, released.stdout


def test_agents_landing_and_releasing_at_once_leave_no_branch(repo: Path) -> None:
    """Four agents land at once (real processes, one queue), then release at once: every
    branch landed and deleted, every record written and then forgotten, exact counts."""
    assert gitxact("init", cwd=repo).returncode == 0
    agents = [f"c{n}" for n in range(4)]
    tokens: dict[str, str] = {}
    for agent in agents:
        wt, tokens[agent] = _acquire(repo, agent)
        _commit(wt, f"{agent}.txt", f"{agent}\n", f"{agent}: work")
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    before = _tip(repo, "main")
    landers = run_parallel(
        [[*GITXACT, "land", f"gitxact/{a}", "--onto", "main", "--timeout", "300"] for a in agents], repo
    )
    assert [p.returncode for p in landers] == [0] * 4, [p.stderr for p in landers]
    assert git("rev-list", "--count", f"{before}..main", cwd=repo).strip() == "4"
    assert sorted(landed.load(Workspace(repo))) == [f"gitxact/{a}" for a in agents]
    releases = run_parallel([[*GITXACT, "worktree", "release", a, "--token", tokens[a]] for a in agents], repo)
    assert [p.returncode for p in releases] == [0] * 4, [p.stderr for p in releases]
    assert sum("deleted (landed on main)" in p.stdout for p in releases) == 4
    assert git("branch", "--list", "gitxact/*", cwd=repo) == ""
    assert landed.load(Workspace(repo)) == {}
    git("fsck", "--strict", cwd=repo)


def test_a_branch_that_merged_main_in_before_landing_is_integrated(repo: Path) -> None:
    """The agent brought main in with a merge commit, then landed (the rebase drops the
    merge). A merge's own resolution is in no landed commit, so the record alone does not
    decide; merging the branch into main changes nothing, which does."""
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "m")
    _commit(wt, "m.txt", "agent\n", "m: work")
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    git("merge", "-q", "--no-edit", "main", cwd=wt)
    assert gitxact("land", "--onto", "main", cwd=wt).returncode == 0
    released = gitxact("worktree", "release", "m", "--token", token, cwd=repo)
    assert "branch gitxact/m deleted (squash-merged into main)" in released.stdout, released.stdout


def test_work_only_in_a_merge_commit_is_kept(repo: Path) -> None:
    """An "evil" merge: the agent's merge of main also adds a file. The landing's rebase
    drops merge commits, so that file never reached main: the branch must be kept."""
    assert gitxact("init", cwd=repo).returncode == 0
    wt, token = _acquire(repo, "e")
    _commit(wt, "e.txt", "agent\n", "e: work")
    _commit(repo, "main.txt", "main moves on\n", "main moves on")
    git("merge", "-q", "--no-edit", "--no-commit", "main", cwd=wt)
    (wt / "only-in-the-merge.txt").write_text("work\n")
    git("add", "only-in-the-merge.txt", cwd=wt)
    git("commit", "-q", "--no-edit", cwd=wt)
    tip = _tip(wt, "HEAD")
    assert gitxact("land", "--onto", "main", cwd=wt).returncode == 0
    assert not (repo / "only-in-the-merge.txt").exists()
    released = gitxact("worktree", "release", "e", "--token", token, cwd=repo)
    assert "branch gitxact/e kept" in released.stdout, released.stdout
    assert _tip(repo, "gitxact/e") == tip
