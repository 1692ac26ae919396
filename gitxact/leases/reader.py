"""A verified, read-only view of ``leases.json`` without pydantic: for hooks and ``gx``.

The reference-transaction hook runs on every ref update of every git command, and
``gx`` checks the leases on every mutating command (auto-gc is turned off while any
is active). Importing pydantic costs more than git's own work there (docs/benchmark.md,
"Start-up tricks"), so this reads the same file the same way
:class:`gitxact.state.store.StateFile` does,
with the standard library only: the envelope's format, kind, schema and checksum
(the one definition in :mod:`gitxact.state.checksums`) must be right, a bad or missing file
falls back to its ``.bak``, and with no good generation :class:`StateError` names the
file. Semantics are :func:`gitxact.leases.records.active`'s: every record counts until it is
removed, live or not (tests/test_leaseview.py holds the two readers to that).
Reads take no lock: writers replace the file atomically.
"""

from __future__ import annotations

import os

from gitxact.errors import StateError
from gitxact.state import envelope
from gitxact.util.digest import sha256_hex
from gitxact.util.startup import AGENT_ENV

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from typing import Any

#: gitxact's mark in a worktree's admin folder, and its `git worktree lock` reason (what
#: :meth:`LeaseView.genuine` reads): defined here, on the light path, for the hooks;
#: gitxact.worktrees.ownership and .registration use these.
MARK = "gitxact-lease"
LOCK_REASON_PREFIX = "gitxact lease "
#: The one name of the leases file and its schema number (:class:`gitxact.leases.records.LeaseState`
#: uses these): the rich module imports the lean one, never the other way.
LEASES_FILE = "leases.json"
SCHEMA = 1


class LeaseView:
    """The fields of a lease record the guard and the hooks need."""

    __slots__ = ("agent", "branch", "common_dir", "path", "token_hash", "worktree_id")

    def __init__(
        self, agent: str, path: str, branch: str, worktree_id: str | None, token_hash: str | None = None
    ) -> None:
        self.agent = agent
        self.path = path
        self.branch = branch
        self.worktree_id = worktree_id
        self.token_hash = token_hash
        self.common_dir: str | None = None  # set by load(): the repository the record is of

    def genuine(self) -> bool:
        """Whether the worktree this record names is one gitxact locked for this record's agent.

        The cheap half of the proof :mod:`gitxact.worktrees.ownership` asks before deleting
        anything: a record with a valid checksum can still name ``main`` or a person's
        worktree, and must not lock its owner out of it (a record of a worktree not made
        yet, or gone already, protects nothing either). The agent a worktree was made for
        is in git's lock reason (``git worktree add --lock`` writes it before anything
        else), which the leases file cannot change: a record that copies another lease's
        token hash and path under a new agent name is not that lease. Otherwise the mark
        (the lease's token hash) proves it, or the lock reason naming this agent: a worktree a
        person unlocked (``git worktree unlock``) or locked again with a reason of their own
        is still this lease's.
        """
        try:
            with open(os.path.join(self.path, ".git"), encoding="utf-8") as handle:
                text = handle.read().strip()
        except (OSError, UnicodeDecodeError):
            return False
        if not text.startswith("gitdir: ") or self.common_dir is None:
            return False
        admin = text[len("gitdir: ") :]
        if os.path.dirname(os.path.realpath(admin)) != os.path.realpath(os.path.join(self.common_dir, "worktrees")):
            return False
        if lock_names_another(admin, self.agent):
            return False
        if self.token_hash and _read(os.path.join(admin, MARK)).strip() == self.token_hash:
            return True
        return _read(os.path.join(admin, "locked")).startswith(f"{LOCK_REASON_PREFIX}{self.agent} (")

    @property
    def short_branch(self) -> str:
        return self.branch.removeprefix("refs/heads/")

    def describe(self) -> str:
        return f"{self.agent}  {self.path}  {self.short_branch}"

    def __repr__(self) -> str:
        return f"LeaseView({self.agent!r}, {self.path!r}, {self.branch!r})"


#: How the reference-transaction hook's refusal starts on stderr (git passes it on to
#: whoever ran it): what a lander looks for to report the boundary, not a git failure.
REFUSED_MARK = "gitxact: ref update refused"

#: The lease token of the agent a process works for; set by the orchestrator.
TOKEN_ENV = "GITXACT_LEASE_TOKEN"  # noqa: S105 - the name of a variable, not a secret


def env_token() -> str | None:
    return os.environ.get(TOKEN_ENV) or None


def env_agent() -> str | None:
    """The agent named by :data:`AGENT_ENV`, as given (the hooks judge it; they do not refuse a bad spelling)."""
    return os.environ.get(AGENT_ENV) or None


def hash_token(token: str) -> str:
    """Tokens are 256-bit random secrets, so a plain SHA-256 is enough to store them."""
    return "sha256:" + sha256_hex(token.encode())


def token_matches(token_hash: str | None, token: str) -> bool:
    import hmac  # only when a token is checked

    return token_hash is not None and hmac.compare_digest(token_hash, hash_token(token))


def trespass(lease_agent: str, token_hash: str | None, agent: str | None, token: str | None) -> str | None:
    """Why a process acting for *agent* with *token* may not change this lease's work, or None.

    The lease's token settles it when the process shows one (``GITXACT_LEASE_TOKEN``): the
    right token may act (an orchestrator cleaning up for its agent), a wrong one never.
    Without a token, a process that names another agent is refused; one that names no
    agent is a person and may act (the boundary stops agents' mistakes; it is not an
    access control: anyone who can write the folder can write the files).
    """
    if token:
        if token_matches(token_hash, token):
            return None
        return f"{TOKEN_ENV} is not the token of the lease held by {lease_agent!r}"
    if agent and agent != lease_agent:
        return f"it is leased to {lease_agent!r}, but {AGENT_ENV}={agent!r}"
    return None


def leases_path(common_dir: str | os.PathLike[str]) -> str:
    return os.path.join(os.fspath(common_dir), "gitxact", "state", LEASES_FILE)


def exists(common_dir: str | os.PathLike[str]) -> bool:
    path = leases_path(common_dir)
    return os.path.lexists(path) or os.path.lexists(path + ".bak")


def load(common_dir: str | os.PathLike[str]) -> list[LeaseView]:
    """Every lease record of the repository whose common dir is *common_dir*, by agent."""
    data = envelope.load(leases_path(common_dir), "leases", SCHEMA, _records)
    leases = [] if data is None else _records(data)
    for lease in leases:
        lease.common_dir = os.fspath(common_dir)
    return leases


def _records(data: dict[str, Any]) -> list[LeaseView]:
    records = data.get("leases", {})
    if not isinstance(records, dict):
        raise envelope.Corrupt("does not validate: leases is not a mapping")
    return sorted((_lease(record) for record in records.values()), key=lambda lease: lease.agent)


def for_branch(leases: list[LeaseView], ref: str) -> LeaseView | None:
    """The genuine lease of a branch given as ``gitxact/x`` or ``refs/heads/gitxact/x``.

    This and :func:`for_path` are the one meaning of "the lease of": a well-formed record
    counts only when the worktree it names carries gitxact's mark for it
    (:meth:`LeaseView.genuine`), so a forged record naming a person's worktree or branch
    neither locks them out nor lends that worktree an agent's name.
    :func:`gitxact.leases.records.for_branch` and ``for_path`` answer through these.
    """
    short = ref.removeprefix("refs/heads/")
    return next((lease for lease in leases if lease.short_branch == short and lease.genuine()), None)


def for_path(leases: list[LeaseView], path: str) -> LeaseView | None:
    """The genuine lease whose worktree contains *path* (compared by real path)."""
    target = os.path.realpath(path)
    for lease in leases:
        root = os.path.realpath(lease.path)
        if (target == root or target.startswith(root + os.sep)) and lease.genuine():
            return lease
    return None


def agent_of_worktree(common_dir: str | os.PathLike[str], worktree: str | os.PathLike[str]) -> str | None:
    """The agent whose genuine lease holds *worktree*, if any: who work done there is counted
    for when the process names no agent (:attr:`gitxact.core.repo.Repo.attribution`).

    A broken leases file names nobody here: it is ``status``'s and ``doctor``'s to report.
    """
    if not exists(common_dir):
        return None
    try:
        lease = for_path(load(common_dir), os.fspath(worktree))
    except StateError:
        return None
    return None if lease is None else lease.agent


def lock_names_another(admin: str, agent: str) -> bool:
    """Whether git's lock on the worktree whose admin folder is *admin* is gitxact's for an
    agent other than *agent*: the one rule by which a record naming that worktree under
    *agent* is not its lease (:meth:`LeaseView.genuine`, and ownership before deleting)."""
    reason = _read(os.path.join(admin, "locked"))
    return reason.startswith(LOCK_REASON_PREFIX) and not reason.startswith(f"{LOCK_REASON_PREFIX}{agent} (")


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return ""


def _lease(record: Any) -> LeaseView:
    if not isinstance(record, dict):
        raise envelope.Corrupt("does not validate: a lease is not a mapping")
    agent, path, branch, worktree_id, token_hash = (
        record.get(k) for k in ("agent", "path", "branch", "worktree_id", "token_hash")
    )
    if not (isinstance(agent, str) and isinstance(path, str) and isinstance(branch, str)):
        raise envelope.Corrupt("does not validate: a lease lacks agent, path or branch")
    return LeaseView(
        agent,
        path,
        branch,
        worktree_id if isinstance(worktree_id, str) else None,
        token_hash if isinstance(token_hash, str) else None,
    )
