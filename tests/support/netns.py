"""The network partition of :mod:`fixtures.partition` as a test needs it: skipped with the
reason where network namespaces cannot be made, removed afterwards whatever happens."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from fixtures.partition import Partition, why_not


@contextlib.contextmanager
def partition_or_skip() -> Iterator[Partition]:
    why = why_not()
    if why is not None:
        pytest.skip(why)
    net = Partition(str(os.getpid() % 100000))
    try:
        net.make()
        yield net
    finally:
        net.remove()
