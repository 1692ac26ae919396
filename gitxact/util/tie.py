"""Children that die with their parent: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``.

A SIGKILLed parent cannot pass its death on, and a git or a user's command that goes on
working after the gitxact process that held its locks died works under locks nobody
holds. Linux can be asked to kill the child the moment its parent dies; Python has no
call for it, so it goes through ``ctypes``. A module of its own, on ``os`` (and the
lean :mod:`gitxact.util.faults`' ``SIGKILL``) alone at import: ``gx``'s locked path
(:func:`gitxact.git.lite.run_tied`) uses it on every call, without
:mod:`gitxact.util.process`' ``subprocess`` and ``signal``.
"""

from __future__ import annotations

import os

from gitxact.util.faults import SIGKILL

TYPE_CHECKING = False  # see gitxact/__init__.py: gx's locked path imports no typing
if TYPE_CHECKING:
    from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> Callable[[], None] | None:
    """A function for the child, between fork and exec: die (SIGKILL) when this process dies.

    ``None`` where ``prctl`` is not there (not Linux). If this process died before the
    child got that far, the child exits at once instead of running orphaned. Only for
    processes that run no other threads while they start the child (the CLI and ``gx``):
    running Python between fork and exec is not safe beside threads.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def in_child() -> None:
        prctl(_PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + SIGKILL)

    return in_child


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, through ``_ctypes``: the ``ctypes`` package defines some hundred
    classes on import, on every locked ``gx``, where one C function type is needed.
    ``ctypes`` itself where ``_ctypes`` differs. Start-up: saves over 0.1 S on gx commit
    (docs/benchmark.md, "Start-up tricks")."""
    try:
        import _ctypes

        class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]  # = ctypes.c_int
            _type_ = "i"

        class CFunction(_ctypes.CFuncPtr):  # = ctypes.CDLL's function type, use_errno=True
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt

        libc = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # None: the program itself, as CDLL(None)
        return CFunction(_ctypes.dlsym(libc, "prctl"))
    except (ImportError, OSError, AttributeError, TypeError):
        pass
    try:  # pragma: no cover - a Python whose _ctypes differs
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):  # pragma: no cover - not Linux
        return None
