"""A request's commits through the shared remote, for a lander in another clone (PostgreSQL).

On the database queue (:mod:`gitxact.land.shared`), whoever holds a remote target's lock
serves the oldest requests, and the commits of a request filed on another host exist
only there. So the requester pushes its tip to ``refs/gitxact/land/requests/<id>`` on
the remote it lands onto *before* filing (a request is never in the queue without its
commits reachable), a lander fetches the tips it lacks from there, and the requester
deletes the ref once its request is finished. A requester killed before that leaves
one ref under ``refs/gitxact/land/requests/`` (``git push REMOTE --delete`` it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gitxact.errors import GitError, OperationFailedError

if TYPE_CHECKING:
    from gitxact.core.repo import Repo

REQUEST_PREFIX = "refs/gitxact/land/requests/"
#: Where ``remote_contains`` fetches a remote target it needs to read (deleted at once).
_PROBE_REF = "refs/gitxact/land/probe"


def request_ref(request_id: str) -> str:
    return f"{REQUEST_PREFIX}{request_id}"


def push_request(repo: Repo, remote: str, tip: str, request_id: str) -> None:
    """Put *tip* on *remote* for any lander; exit 1 naming git's reason when the remote refuses."""
    result = repo.git(
        ["push", "--quiet", "--no-verify", remote, f"{tip}:{request_ref(request_id)}"],
        cwd=repo.layout.common_dir,
        check=False,
    )
    if not result.ok:
        raise OperationFailedError(
            f"could not push the branch's tip to {remote} for the shared landing queue: {result.stderr.strip()}",
            hint="a lander on another host fetches it from there; check that you can push to the remote",
        )


def drop_request(repo: Repo, remote: str, request_id: str) -> None:
    """Delete the request's ref on *remote*; a failure only leaves a stale ref behind."""
    repo.git(
        ["push", "--quiet", "--no-verify", remote, "--delete", request_ref(request_id)],
        cwd=repo.layout.common_dir,
        check=False,
    )


def fetch_missing(repo: Repo, remote: str, tips: dict[str, str]) -> None:
    """Fetch the commits of the requests (id -> tip) this clone lacks, in one fetch."""
    probe = repo.git(
        ["cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=repo.layout.common_dir,
        input="".join(f"{tip}\n" for tip in tips.values()),
        check=False,
    )
    have = {line.split()[0] for line in probe.lines() if line.endswith(" commit")}
    wanted = [request_ref(rid) for rid, tip in tips.items() if tip not in have]
    if not wanted:
        return
    result = repo.git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, *wanted],
        cwd=repo.layout.common_dir,
        check=False,
    )
    if not result.ok:
        raise GitError(result.argv, result.returncode, result.stderr)


def remote_contains(repo: Repo, remote: str, target: str, commit: str) -> bool:
    """Whether *target* on *remote* has *commit* (a dead lander's candidate): did its push happen?"""
    listed = repo.git(["ls-remote", "--heads", remote, f"refs/heads/{target}"], cwd=repo.layout.common_dir)
    tips = [line.split("\t")[0] for line in listed.lines() if line.endswith(f"\trefs/heads/{target}")]
    if not tips:
        return False
    if tips[0] == commit:
        return True
    fetched = repo.git(
        ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, f"+refs/heads/{target}:{_PROBE_REF}"],
        cwd=repo.layout.common_dir,
        check=False,
    )
    try:
        if not fetched.ok:
            raise GitError(fetched.argv, fetched.returncode, fetched.stderr)
        return repo.git(["merge-base", "--is-ancestor", commit, _PROBE_REF], cwd=repo.layout.common_dir, check=False).ok
    finally:
        repo.git(["update-ref", "-d", _PROBE_REF], cwd=repo.layout.common_dir, check=False)
