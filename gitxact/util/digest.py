"""SHA-256 for the light paths, without ``hashlib``'s OpenSSL start-up.

``import hashlib`` loads OpenSSL's bindings, CPython's own built-in SHA-256 module does not,
and every ``gx`` call in a repository with leases checksums ``leases.json``. Start-up: saves
over 0.1 S on gx commit and the hooks (docs/benchmark.md, "Start-up tricks"). The digests are
the same; the built-in module is private to CPython (``_sha2`` since 3.12, ``_sha256``
before), so ``hashlib`` stays the fallback for a build without it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_sha256: Any = None


def sha256_hex(data: bytes) -> str:
    global _sha256  # noqa: PLW0603 - found once per process
    if _sha256 is None:
        try:
            from _sha2 import sha256 as found  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            try:
                from _sha256 import sha256 as found  # type: ignore[import-not-found, no-redef, unused-ignore]
            except ImportError:
                from hashlib import sha256 as found  # type: ignore[assignment, unused-ignore]
        _sha256 = found
    digest: str = _sha256(data).hexdigest()
    return digest
