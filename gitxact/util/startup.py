"""Start-up tweaks of the CLI process that must not leak into the commands it runs.

pydantic scans every installed package's entry points for plugins the first time a
model is built (``importlib.metadata``, on every CLI call that builds one). gitxact uses
no pydantic plugin, so the CLI turns the scan off for itself, and removes the switch
again from the environment of every child, so a user's own program run under
``gitxact lock -- CMD`` sees their environment unchanged.
"""

from __future__ import annotations

import os

_PLUGINS_VAR = "PYDANTIC_DISABLE_PLUGINS"
_SET_BY_US: set[str] = set()


def skip_pydantic_plugins() -> None:
    if _PLUGINS_VAR not in os.environ:
        os.environ[_PLUGINS_VAR] = "__all__"
        _SET_BY_US.add(_PLUGINS_VAR)


def child_environ() -> dict[str, str]:
    """``os.environ`` as the user gave it to us, for a child process."""
    env = dict(os.environ)
    for name in _SET_BY_US:
        env.pop(name, None)
    return env
