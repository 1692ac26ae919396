"""Shared by the hostile-input tests: hypothesis settings, the in-process CLI, a tree snapshot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from gitxact.cli.main import main

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def tree_snapshot(root: Path) -> dict[str, int]:
    """Every file under *root* except gitxact's own folder, with its size."""
    found: dict[str, int] = {}
    for folder, dirs, files in os.walk(root):
        if "gitxact" in dirs and folder.endswith(".git"):
            dirs.remove("gitxact")
        for name in files:
            path = Path(folder, name)
            found[str(path.relative_to(root))] = path.lstat().st_size
    return found


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "internal error" not in err, err
    return code, out, err
