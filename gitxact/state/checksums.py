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


def sealed(body: dict[str, Any]) -> bytes:
    """``canonical_json`` of *body* with its ``checksum`` added, serialised once, not twice.

    ``checksum`` sorts before every other field of an envelope (``data``, ``format``, ...), so
    the sealed text is the body's own text with ``"checksum":...,`` put first: the one
    serialisation is hashed and reused (at 1,000 leases it is most of a ``leases.json`` write).
    """
    if not body or min(body) <= "checksum":
        raise ValueError("an envelope's fields must all sort after 'checksum'")
    text = canonical_json(body)
    checksum = "sha256:" + sha256_hex(text)
    return b'{"checksum":' + canonical_json(checksum) + b"," + text[1:]
