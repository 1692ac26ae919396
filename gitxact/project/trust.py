"""Which ``.gitxact.toml`` contents this clone trusts to run: direnv's ``allow``, by SHA-256.

A committed file is anyone's who can push a commit; its ``setup`` runs with the clone
owner's rights on every acquire. So its commands run only once the clone has trusted
that exact content (``gitxact trust``, which shows them first): an untrusted or changed
file makes ``acquire`` refuse (exit 3) naming ``gitxact trust``, never run it. The
record is by content, not by commit: the same file on another branch needs no second
``trust``, while one byte changed needs one. ``state/trust.json`` changes under the
``trust`` resource lock; a file with no commands (only ports or include) needs no trust.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar

from gitxact.errors import RefusedError
from gitxact.state.record import NUMBER, STRING, Record, dict_of, field

if TYPE_CHECKING:
    from gitxact.core.repo import Repo
    from gitxact.project.config import LeaseConfig
    from gitxact.project.results import TrustDoc
    from gitxact.state.store import StateFile

TRUST_FILE = "trust.json"
TRUST_LOCK = "trust"


class Trusted(Record):
    """One trusted content: when, and where it was read then (for people; never checked)."""

    trusted_at: float = field(NUMBER)
    source: str = field(STRING, default="")


class TrustState(Record):
    """``trust.json``: SHA-256 of a ``.gitxact.toml`` -> :class:`Trusted`."""

    KIND: ClassVar[str] = "trust"
    SCHEMA: ClassVar[int] = 1
    EXTRA_FORBIDDEN: ClassVar[bool] = True

    trusted: dict[str, Trusted] = field(dict_of(Trusted), default={})


def trust_file(repo: Repo) -> StateFile[TrustState]:
    return repo.state_file(TRUST_FILE, TrustState)


def is_trusted(repo: Repo, sha256: str) -> bool:
    """Whether this clone trusts the content with this SHA-256 (reads take no lock: writes are atomic)."""
    if not repo.state_path(TRUST_FILE).exists() and not repo.state_path(TRUST_FILE + ".bak").exists():
        return False
    return sha256 in trust_file(repo).load().trusted


def require_trusted(repo: Repo, config: LeaseConfig, base: str | None = None) -> None:
    """Refuse (exit 3) a configuration whose commands this clone has not trusted as they are;
    *base* is what ``gitxact trust --base`` needs to name that file (``None``: the default)."""
    if not config.has_commands or config.sha256 is None or is_trusted(repo, config.sha256):
        return
    shown = "; ".join([*(f"setup: {c}" for c in config.setup), *(f"teardown: {c}" for c in config.teardown)])
    raise RefusedError(
        f"{config.source} names commands this clone has not trusted ({shown}); nothing was done",
        hint=f"read them, then run `gitxact trust{f' --base {base}' if base else ''}` "
        "(a changed file needs trusting again)",
    )


def set_trust(repo: Repo, config: LeaseConfig, *, revoke: bool = False) -> TrustDoc:
    """Record (or with *revoke*, drop) *config*'s content as trusted to run."""
    from gitxact.project.results import TrustDoc  # pydantic: `status` reads trust.json without it

    doc = TrustDoc(
        source=config.source,
        sha256=config.sha256,
        setup=list(config.setup),
        teardown=list(config.teardown),
        trusted=False,
        action="not-needed",
    )
    sha = config.sha256
    if sha is None or (not config.has_commands and not revoke):
        return doc
    repo.store.ensure("locks", "state")
    file = trust_file(repo)
    with repo.locks.resource(TRUST_LOCK):
        state = file.load(repair=True)
        known = sha in state.trusted
        if revoke:
            doc.action = "revoked" if known else "unchanged"
            if known:
                del state.trusted[sha]
                file.save(state)
        else:
            doc.action = "unchanged" if known else "trusted"
            if not known:
                state.trusted[sha] = Trusted(trusted_at=time.time(), source=config.source or "")
                file.save(state)
        doc.trusted = not revoke
    return doc
