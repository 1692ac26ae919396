"""Messages to people: warnings and progress go to stderr, never stdout.

stdout belongs to ``--json`` documents and to the wrapped git's own output, so the
library never prints there. A library user can replace :data:`sink` to route these
lines elsewhere (an orchestrator's log, say).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable


def _stderr(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stderr must not turn a notice into a failure
        pass


#: Where notices go; replaceable by embedding applications.
sink: Callable[[str], None] = _stderr


def warn(message: str) -> None:
    sink(f"gitxact: warning: {message}")


def info(message: str) -> None:
    sink(f"gitxact: {message}")


def use_color(stream: object = None) -> bool:
    """Colors only on a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    target = sys.stdout if stream is None else stream
    isatty = getattr(target, "isatty", None)
    return bool(isatty and isatty())
