"""Start-up tweaks of the CLI process that must not leak into the commands it runs.

pydantic scans every installed package's entry points for plugins the first time a
model is built (``importlib.metadata``, on every CLI call that builds one). gitxact uses
no pydantic plugin, so the CLI turns the scan off for itself, and removes the switch
again from the environment of every child, so a user's own program run under
``gitxact lock -- CMD`` sees their environment unchanged.

It also names the variable through which a process says which agent it acts for
(:data:`AGENT_ENV`): read from the environment gitxact starts in, by the hooks
(:mod:`gitxact.leases.reader`) as by the library (:func:`gitxact.util.names.agent_from_env`
validates it), and set for the processes a lease's agent runs.
"""

from __future__ import annotations

import os

#: The agent a process acts for (an agent's shell, an orchestrator's child, the MCP server's tools).
AGENT_ENV = "GITXACT_AGENT"
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
