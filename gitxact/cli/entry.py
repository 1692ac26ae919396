"""The ``gitxact`` console script: what can be answered without click, before click.

Importing click costs more than a bare interpreter start (see the bench's CLI rows).
``gitxact --version`` is what scripts and installers call to probe for
gitxact, and ``tracker incr`` / ``lock -- CMD`` are what agents run in loops
(:mod:`gitxact.cli.fast`). Everything else goes to :func:`gitxact.cli.main.main`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # start-up: saves over 0.1 S on gitxact --version (docs/benchmark.md, "Start-up tricks")
if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from gitxact._version import __version__

        sys.stdout.write(f"gitxact, version {__version__}\n")  # click's wording, as before
        return 0
    from gitxact.cli import fast

    code = fast.try_run(args)
    if code is not None:
        return code
    from gitxact.cli.main import main as full

    return full(args)
