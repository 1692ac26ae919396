"""Messages to people: warnings and progress go to stderr, never stdout.

stdout belongs to ``--json`` documents and to the wrapped git's own output, so the
library never prints there. A library user can replace :data:`sink` to route these
lines elsewhere (an orchestrator's log, say).
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports neither typing nor re
if TYPE_CHECKING:
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


_COLORS = {"red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35, "cyan": 36}
_ANSI = r"\x1b\[[0-9;]*m"


def style(text: str, *, fg: str | None = None, bold: bool = False, color: bool | None = None) -> str:
    """*text* in a color (and/or bold) when *color* (default: :func:`use_color` on stdout)."""
    if not (use_color() if color is None else color):
        return text
    codes = ([str(_COLORS[fg])] if fg else []) + (["1"] if bold else [])
    return f"\x1b[{';'.join(codes)}m{text}\x1b[0m" if codes else text


def width(cell: str) -> int:
    """Columns *cell* takes on a terminal: escape codes take none."""
    if "\x1b" not in cell:
        return len(cell)
    import re  # colored tables only: gx's notices never pay for re

    return len(re.sub(_ANSI, "", cell))


def table(rows: list[list[str]], indent: str = "  ") -> str:
    """Rows aligned in columns, two spaces apart; colored cells line up too."""
    if not rows:
        return ""
    widths = [max(width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        indent + "  ".join(cell + " " * (w - width(cell)) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
