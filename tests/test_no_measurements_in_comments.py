"""No measurements in comments or docstrings (issue 26): they go stale while the code stays.

Figures live in scripts/bench's table and docs/benchmark.md; a comment keeps
the reason in words ("imports re, which imports enum: see the bench's gx row"). Only
comments and docstrings are scanned (the tokenize module tells them apart): a constant in
code, or a message the user reads, is not a measurement. A bound ("< 100 ms", "at least
1 ms") is a rule, not a measurement, and stays.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [*sorted((ROOT / "gitxact").rglob("*.py")), ROOT / "bin" / "gx"]

_BOUND = r"(?<![<>≤≥=] )(?<![<>≤≥=])(?<!at least )(?<!at most )(?<!within )(?<!under )"
MEASUREMENT = re.compile(
    "|".join(
        [
            _BOUND + r"(?<![\w.])~?\d+(\.\d+)? ?(ms|µs|us)\b",  # a time
            r"\bM instructions\b",  # a valgrind count
            r"\d+(\.\d+)?x a bare\b",  # a ratio to a bare start
            r"\b(half|a third|a fifth|a quarter|\d+(\.\d+)?) of a (bare )?(Python|interpreter) start",
        ]
    )
)


def _docstring_or_comment(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every comment and every string that is a statement of its own."""
    found: list[tuple[int, str]] = []
    tokens = list(tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline))
    skip = {tokenize.NL, tokenize.COMMENT}
    significant = [t for t in tokens if t.type not in skip]
    starts = {tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING}
    for i, tok in enumerate(significant):
        if tok.type != tokenize.STRING:
            continue
        before = significant[i - 1].type if i else tokenize.ENCODING
        after = significant[i + 1].type if i + 1 < len(significant) else tokenize.ENDMARKER
        if before in starts and after in {tokenize.NEWLINE, tokenize.ENDMARKER}:
            found.append((tok.start[0], tok.string))
    found += [(t.start[0], t.string) for t in tokens if t.type == tokenize.COMMENT]
    return found


def hits(path: Path) -> list[tuple[int, str]]:
    """(line, figure) of every measurement in *path*'s comments and docstrings."""
    return [
        (line, match.group(0))
        for line, text in _docstring_or_comment(path)
        for match in MEASUREMENT.finditer(" ".join(text.split()))  # a figure split over two lines
    ]


def test_no_measurement_in_any_comment_or_docstring() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {figure}" for path in SOURCES for line, figure in hits(path)]
    assert not found, "measurements belong in scripts/bench and docs/benchmark.md:\n" + "\n".join(found)


def test_the_scan_sees_comments_and_docstrings_but_not_code(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""Module: importing it costs 12 M instructions."""\n'
        "TIMEOUT_MS = 5  # a constant in code is fine\n"
        "def f() -> str:\n"
        '    """Takes ~3 ms."""\n'
        '    return "waited 5 ms"  # a message the user reads is fine too\n'
        "x = 1  # enum costs 0.4 of a Python start-up\n"
        "y = 2  # a wait is at least 1 ms, and a hold < 100 ms: bounds, not figures\n"
    )
    assert hits(sample) == [(1, "M instructions"), (4, "~3 ms"), (6, "0.4 of a Python start")]
