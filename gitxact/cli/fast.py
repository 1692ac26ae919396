"""The commands agents run in loops, without click: ``tracker incr`` and ``lock -- CMD``.

Importing click costs more than the whole command's work, before any gitxact code runs.
Start-up: saves over 0.1 S on tracker incr and lock -- true (docs/benchmark.md,
"Start-up tricks"). These two run in agents' loops (count a
finished task, serialize a step), so the plain shapes of their command lines are read
here by hand:

    gitxact [-C PATH]... tracker incr KEY [N] [--timeout SECONDS]
    gitxact [-C PATH]... lock [--shared|--exclusive] [--name NAME] [--timeout SECONDS] -- CMD...

and run by the very functions their click commands call (:func:`tracker_incr`,
:func:`run_under_lock`). Anything else (``--json``, ``--help``, an option in another
spelling, a word that does not parse) returns ``None`` and goes to click, which
answers it as before, errors included. ``GITXACT_NO_FAST=1`` sends everything to click
(tests/test_fast_cli.py runs every shape both ways and compares).

The words of those shapes are defined here once, and the click commands are declared with
them (``-C``, ``--timeout`` and its bound, ``--shared``/``--exclusive`` and the default
mode, ``--name``, the default amount): a second parser, but not a second definition of
the command line (tests/test_fast_cli.py holds the click declarations to these).
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

from gitxact.cli.app import AppContext
from gitxact.locking.tickets import EXCLUSIVE, SHARED

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from gitxact.locking.tickets import Mode

NO_FAST_ENV = "GITXACT_NO_FAST"

#: The root's ``-C PATH`` (cumulative, like git's).
PATH_OPTION = "-C"
#: How long to wait for the locks: a number of seconds no less than :data:`TIMEOUT_MIN`.
TIMEOUT_OPTION = "--timeout"
TIMEOUT_MIN = 0.0
#: ``tracker incr KEY [N]``: N when it is not given.
DEFAULT_AMOUNT = 1
#: ``lock``'s mode flags, the default mode, and the option naming a named lock.
SHARED_OPTION = "--shared"
EXCLUSIVE_OPTION = "--exclusive"
DEFAULT_MODE = EXCLUSIVE
NAME_OPTION = "--name"


def try_run(args: list[str]) -> int | None:
    """Run *args* if they are one of the shapes above (the exit code), else ``None``."""
    if os.environ.get(NO_FAST_ENV):
        return None
    paths: list[str] = []
    while len(args) >= 2 and args[0] == PATH_OPTION:
        paths.append(args[1])
        args = args[2:]
    if args[:2] == ["tracker", "incr"]:
        incr = _incr_words(args[2:])
        if incr is None:
            return None
        return _guarded(lambda app: tracker_incr(app, *incr), paths)
    if args[:1] == ["lock"]:
        lock = _lock_words(args[1:])
        if lock is None:
            return None
        return _guarded(lambda app: run_under_lock(app, *lock), paths)
    return None


def _guarded(body: Callable[[AppContext], int], paths: list[str]) -> int:
    """What :func:`gitxact.cli.main.main` does around a command, minus click."""
    from gitxact import error_handler
    from gitxact.git import run as git
    from gitxact.util import startup

    startup.skip_pydantic_plugins()

    def run() -> int:
        git.absolutize_inherited_env()
        return body(AppContext(tuple(paths)))

    return error_handler.guarded(run)


def _seconds(word: str) -> float | None:
    """``--timeout``'s value as click's ``FloatRange(min=TIMEOUT_MIN)`` takes it, or ``None`` (then click decides)."""
    try:
        value = float(word)
    except ValueError:
        return None
    return value if value >= TIMEOUT_MIN and not math.isnan(value) else None


def _is_option(word: str, name: str) -> bool:
    """*word* is option *name*, as ``--name`` (its value next) or ``--name=V``."""
    return word == name or word.startswith(name + "=")


def _option_value(words: list[str], at: int, name: str) -> tuple[str | None, int]:
    """The value of option *name* at ``words[at]`` (``--name V`` or ``--name=V``) and where the next word is."""
    word = words[at]
    if word == name:
        return (words[at + 1], at + 2) if at + 1 < len(words) else (None, at + 1)
    return word[len(name) + 1 :], at + 1


def _incr_words(words: list[str]) -> tuple[str, int, float | None] | None:
    key: str | None = None
    amount: int | None = None
    timeout: float | None = None
    at = 0
    while at < len(words):
        word = words[at]
        if _is_option(word, TIMEOUT_OPTION):
            value, at = _option_value(words, at, TIMEOUT_OPTION)
            timeout = None if value is None else _seconds(value)
            if timeout is None:
                return None
            continue
        if word.startswith("-") or "\x00" in word:
            return None  # --json, --help, a negative amount, an unknown option: click's
        if key is None:
            key = word
        elif amount is None and word.isascii() and word.isdigit():
            amount = int(word)
        else:
            return None
        at += 1
    return None if key is None else (key, DEFAULT_AMOUNT if amount is None else amount, timeout)


def _lock_words(words: list[str]) -> tuple[bool, str | None, float | None, list[str]] | None:
    shared = DEFAULT_MODE == SHARED
    name: str | None = None
    timeout: float | None = None
    at = 0
    while at < len(words) and words[at] != "--":
        word = words[at]
        if word in (SHARED_OPTION, EXCLUSIVE_OPTION):
            shared = word == SHARED_OPTION
            at += 1
        elif _is_option(word, TIMEOUT_OPTION):
            value, at = _option_value(words, at, TIMEOUT_OPTION)
            timeout = None if value is None else _seconds(value)
            if timeout is None:
                return None
        elif _is_option(word, NAME_OPTION):
            name, at = _option_value(words, at, NAME_OPTION)
            if name is None:
                return None
        else:
            return None  # the command without `--`, --help, anything else: click's
    command = words[at + 1 :]
    if at >= len(words) or not command:
        return None
    return shared, name, timeout, command


def tracker_incr(app: AppContext, key: str, amount: int, timeout: float | None) -> int:
    """``gitxact tracker incr``'s plain form: add *amount*, print the new value."""
    entry = app.workspace(timeout=timeout).tracker.incr(key, amount)
    _out(str(entry.value))
    return 0


def run_under_lock(
    app: AppContext, shared: bool, name: str | None, timeout: float | None, command: Sequence[str]
) -> int:
    """``gitxact lock``: run *command* holding the repository lock (or the named lock *name*)."""
    from gitxact.git.lite import passthrough_env  # a user's command: never gitxact's internal marker
    from gitxact.util import process

    ws = app.workspace(timeout=timeout)
    mode: Mode = SHARED if shared else EXCLUSIVE
    if name is not None:
        from gitxact.backends.named import run_named

        return run_named(ws, name, mode, timeout, command, env=passthrough_env())
    with ws.lock(mode, timeout):
        env = passthrough_env(ws.locks.child_env())
        return process.run_foreground(command, env=env)


def _out(text: str) -> None:
    import sys

    sys.stdout.write(text + "\n")
    sys.stdout.flush()
