"""How densely the kill-after-every-step tests kill.

Every other kill point by default (every kind of step is still among them), every one under
``-m stress``: the default suite stays within its five minutes (CONTRIBUTING.md).
"""

from __future__ import annotations

import pytest

STRIDES = [pytest.param(2, marks=pytest.mark.slow), pytest.param(1, marks=pytest.mark.stress)]
