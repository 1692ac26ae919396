"""Durations people type (``7d``, ``12h``, ``1d12h``, ``90``): one parser for options and git config.

``--older-than`` and ``gitxact.snapshotExpiry`` take the same spelling, so what a
person tries on the command line can go into the config unchanged. A bare number is
seconds, like every other gitxact duration setting.
"""

from __future__ import annotations

import math
import re

from gitxact.errors import UsageError

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
#: Values of a duration setting that mean "no limit": git's own word for reflogs, and the obvious others.
NEVER = frozenset({"never", "none", "off", "false"})


def parse_duration(text: str, what: str = "duration") -> float:
    """Seconds in *text*; a clear :class:`UsageError` (exit 2) naming *what* otherwise."""
    value = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(value):
        match = _PART.match(value, pos)
        if match is None:
            break
        total += float(match.group(1)) * _UNITS[match.group(2) or "s"]
        pos = match.end()
    if not value or pos != len(value) or math.isinf(total):
        raise UsageError(
            f"invalid {what} {text!r}",
            hint="use a number with a unit: 30s, 15m, 12h, 7d, 2w (combined: 1d12h; a bare number is seconds)",
        )
    return total


def format_duration(seconds: float) -> str:
    """The largest whole units, two at most: ``7d``, ``1d12h``, ``45s``."""
    left = max(0, round(seconds))
    parts: list[str] = []
    for unit in ("d", "h", "m", "s"):  # days, not weeks: "14d" reads better than "2w"
        size = int(_UNITS[unit])
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
        if len(parts) == 2 or (parts and not left):
            break
    return "".join(parts) or "0s"
