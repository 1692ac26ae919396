"""The checksum of a state-file envelope, in a module of its own.

:mod:`gitxact.state.store` writes and verifies it around its records; the git hooks and
``gx`` verify ``leases.json`` with the envelope reader alone (:mod:`gitxact.leases.reader`).
Both call this one definition, so they can never disagree about what a good file is.
"""

from __future__ import annotations

from gitxact.util import jsontext
from gitxact.util.digest import sha256_hex

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def canonical_json(value: object) -> bytes:
    return jsontext.dumps(value, sort_keys=True, ensure_ascii=False, allow_nan=False).encode()


def checksum_of(envelope: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but ``checksum`` itself."""
    body = {key: value for key, value in envelope.items() if key != "checksum"}
    return "sha256:" + sha256_hex(canonical_json(body))
