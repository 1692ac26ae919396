"""Ref changes as compare-and-swap transactions (``git update-ref --stdin``).

Every ref gitxact moves names the value it expects to replace. git checks that
under its own ref lock, so when another writer moved the ref in between, the step
fails cleanly (:class:`RefConflictError`) instead of silently discarding their work.
Several updates in one call are all-or-nothing (start / prepare / commit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitxact.errors import GitError, InvalidNameError, OperationFailedError
from gitxact.git import run as git

#: Refs gitxact owns; the reference-transaction hook protects them from other writers.
GITXACT_NAMESPACE = "refs/gitxact/"


class RefConflictError(OperationFailedError):
    """A ref was not at the value a compare-and-swap expected: someone else moved it."""


#: ``old`` value meaning "must not exist yet" (git's zero oid works for both hash kinds).
MUST_NOT_EXIST = "0" * 40


@dataclass(frozen=True)
class RefUpdate:
    """Set *ref* to *new* (``None`` deletes it) if it is currently *old*.

    ``old=None`` means "whatever it is" (used only for refs gitxact alone writes);
    :data:`MUST_NOT_EXIST` means it must not exist yet.
    """

    ref: str
    new: str | None
    old: str | None
    #: Update a symbolic ref (``HEAD``) itself, detaching it, instead of the branch it
    #: points at; the old value is still compared with what it resolves to.
    no_deref: bool = False

    def command(self) -> str:
        prefix = "option no-deref\n" if self.no_deref else ""
        if self.new is None:
            return prefix + f"delete {self.ref}" + (f" {self.old}" if self.old else "")
        if self.old == MUST_NOT_EXIST:
            return prefix + f"create {self.ref} {self.new}"
        return prefix + f"update {self.ref} {self.new}" + (f" {self.old}" if self.old else "")


def check_refname(ref: str) -> str:
    """A full ref name git accepts (no ``@{...}``, ``..``, spaces, ...)."""
    if not ref.startswith("refs/") or not git.check_ref_format(ref) or "@{" in ref or "\n" in ref:
        raise InvalidNameError(f"invalid ref name {ref!r}")
    return ref


def apply(
    cwd: Path,
    updates: Sequence[RefUpdate],
    *,
    message: str = "gitxact",
    env: Mapping[str, str] | None = None,
    names_checked: bool = False,
    internal: bool = True,
) -> None:
    """Apply *updates* atomically, each guarded by its expected old value.

    ``internal=False``: gitxact's reference-transaction hook judges the updates by the
    identity in *env* instead of letting them through as gitxact's own (:func:`git.run`).

    ``names_checked``: the caller built every ref name from parts it validated already
    (gitxact's own savepoint refs), so the per-name ``git check-ref-format`` process is
    skipped; git still refuses a malformed name inside the transaction.
    """
    if not updates:
        return
    for update in updates:
        if update.ref != "HEAD" and not names_checked:
            check_refname(update.ref)
    script = "start\n" + "".join(u.command() + "\n" for u in updates) + "prepare\ncommit\n"
    try:
        git.run(["update-ref", "-m", message, "--stdin"], cwd, input=script, env=env, internal=internal)
    except GitError as exc:
        stderr = exc.stderr.strip()
        if "but expected" in stderr or "reference already exists" in stderr or "unable to resolve" in stderr:
            raise RefConflictError(
                f"ref changed concurrently, nothing was updated: {stderr.splitlines()[-1]}",
                hint="another writer moved it; re-read and retry (or run `gitxact recover`)",
            ) from exc
        raise


def read(cwd: Path, ref: str) -> str | None:
    """The object id *ref* points to (not peeled), or ``None``."""
    result = git.run(["rev-parse", "-q", "--verify", "--end-of-options", ref], cwd, check=False, read_only=True)
    return result.stdout.strip() or None if result.ok else None


def list_refs(cwd: Path, prefix: str) -> dict[str, str]:
    """Every ref under *prefix*, name -> object id."""
    result = git.run(["for-each-ref", "--format=%(objectname) %(refname)", prefix], cwd, read_only=True)
    refs: dict[str, str] = {}
    for line in result.lines():
        oid, _, name = line.partition(" ")
        refs[name] = oid
    return refs
