"""``gx``: a drop-in for ``git`` that takes the locks each command needs (issue 5 fills this in)."""

from __future__ import annotations

import sys


def main() -> int:
    from gitxact.cli.main import main as gitxact_main

    return gitxact_main(["git", *sys.argv[1:]])
