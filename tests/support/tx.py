"""Shared by the transaction, TDD and recovery tests: uncommitted work of every kind, and its fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path

from support.proc import git


def make_work(repo: Path) -> None:
    """Uncommitted work an agent has before a sequence: staged, modified, untracked, deleted, ignored."""
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "tracked.txt").write_text("tracked v1\n")
    (repo / "doomed.txt").write_text("doomed\n")
    git("add", ".gitignore", "tracked.txt", "doomed.txt", cwd=repo)
    git("commit", "-q", "-m", "base files", cwd=repo)
    (repo / "README").write_text("hello\nstaged line\n")
    git("add", "README", cwd=repo)
    (repo / "tracked.txt").write_text("tracked v2, not staged\n")
    (repo / "wip.txt").write_text("untracked work in progress\n")
    (repo / "notes").mkdir(exist_ok=True)
    (repo / "notes" / "idea.md").write_text("nested untracked\n")
    (repo / "doomed.txt").unlink()
    (repo / "build.log").write_text("ignored output\n")


def fingerprint(repo: Path) -> dict[str, object]:
    """HEAD, branch, index, status and every file's content except ignored ones (and .git)."""
    files: dict[str, str] = {}
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo)
        if rel.parts[0] == ".git" or path.is_dir() or path.suffix == ".log":
            continue
        files[rel.as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return {
        "head": git("rev-parse", "-q", "--verify", "HEAD", cwd=repo, check=False).strip(),
        "branch": git("symbolic-ref", "-q", "HEAD", cwd=repo, check=False).strip(),
        "index": git("ls-files", "-s", cwd=repo),
        "status": git("status", "--porcelain", "--untracked-files=all", cwd=repo),
        "files": files,
    }


def head(repo: Path) -> str:
    return git("rev-parse", "HEAD", cwd=repo).strip()


def gitxact_refs(repo: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname)", "refs/gitxact/", cwd=repo).split()
