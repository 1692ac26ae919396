"""gitxact: a git-aware transactional workspace manager.

The public surface, re-exported explicitly; no logic lives here. Importing the
package stays cheap: heavy modules load when their names are first used.
"""

from __future__ import annotations

from gitxact._version import __version__
from gitxact.errors import (
    GitError,
    GitxactError,
    InvalidNameError,
    LockLostError,
    LockOrderError,
    LockTimeoutError,
    NotARepositoryError,
    OperationFailedError,
    RefusedError,
    StateError,
    UsageError,
    VersionConflictError,
)

# Not `from typing import TYPE_CHECKING` (typing imports re, functools, collections), and
# type checkers honour any constant named TYPE_CHECKING. Kept only in modules gx or the
# hooks import (elsewhere the CLI imports typing anyway).
# start-up: saves over 0.1 S on gx commit, gx status and the hooks (docs/benchmark.md, "Start-up tricks")
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from gitxact.workspace import Workspace

__all__ = [
    "GitError",
    "GitxactError",
    "InvalidNameError",
    "LockLostError",
    "LockOrderError",
    "LockTimeoutError",
    "NotARepositoryError",
    "OperationFailedError",
    "RefusedError",
    "StateError",
    "UsageError",
    "VersionConflictError",
    "Workspace",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Workspace pulls in pydantic and filelock; `gx` on its read-only path must not.
    if name == "Workspace":
        from gitxact.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'gitxact' has no attribute {name!r}")
