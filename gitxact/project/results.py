"""The documents the project configuration returns (and ``--json`` prints)."""

from __future__ import annotations

from gitxact.core.documents import Document


class TrustDoc(Document):
    """What ``gitxact trust`` showed and did."""

    source: str | None
    sha256: str | None
    setup: list[str]
    teardown: list[str]
    #: Whether the content is trusted now (after this command).
    trusted: bool
    #: ``trusted``, ``revoked``, ``unchanged`` (already so), or ``not-needed`` (no file, or no command).
    action: str
    #: The main worktree's own file differs from this committed one (acquires never read it).
    edited_in_main: bool = False
