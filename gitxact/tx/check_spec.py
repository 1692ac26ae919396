"""What a ``--check`` string means: the argv to run, and which exit codes say "tests failed".

One rule for ``tdd``, ``land --check`` and the library (:func:`parse`):

* a string with shell syntax is run by ``/bin/sh -c``, as git runs a ``!`` alias and
  make and npm run their scripts: an operator or expansion (``; & | < > ( ) $ `` `` ` ``),
  a glob (``* ? [``), a brace, ``~``, ``#``, ``!``, a newline, a leading ``NAME=value``,
  or a first word that only a shell can run (``exit``, ``cd``, ``export``, ``if`` ...).
  Splitting ``sleep 0; false`` into words ran ``sleep`` with the arguments ``0;`` and
  ``false``: a usage error that ``tdd red`` took for a failing test;
* any other string is plain words, split as sh would split them (:func:`shlex.split`)
  and run without a shell: the same argv sh would build, and a command that is not
  found is told apart before anything runs;
* ``shell=True`` (``--shell``) sends any string to sh; a list is an exact argv, never
  given to a shell.

sh's syntax is checked before anything runs (``sh -n``): sh exits 2 for a syntax error,
which is a failing exit to a verdict that trusts codes.
"""

from __future__ import annotations

import math
import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

from gitxact.errors import UsageError
from gitxact.util import process

SHELL = "/bin/sh"

#: Characters that mean something to sh beyond quoting and splitting into words (POSIX
#: "Shell Command Language" 2.3-2.13): operators, expansions, globs, braces, comments.
#: Quoted, they mean nothing to sh either, which then builds the same argv as shlex.
_SHELL_CHARACTERS = frozenset(";&|<>()$`*?[]{}~#!\n")
#: First words that only a shell can run: reserved words (POSIX 2.4), special builtins
#: (2.14) and the builtins with no program of their own (``cd``, ``umask``...).
_SHELL_WORDS = frozenset(
    {
        *("case", "do", "done", "elif", "else", "esac", "fi", "for", "if", "in", "then", "until", "while"),
        *("break", ":", "continue", ".", "eval", "exec", "exit", "export", "readonly", "return", "set", "shift"),
        *("times", "trap", "unset", "alias", "unalias", "cd", "command", "getopts", "hash", "jobs", "fg", "bg"),
        *("read", "type", "ulimit", "umask", "wait", "local", "source"),
    }
)
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: Words that run the command after them (``env X=1 pytest``, ``uv run pytest``).
_LAUNCHERS = frozenset({"env", "exec", "command", "nohup", "time"})
_RUNNER_RUN = frozenset({"uv", "poetry", "pdm", "pipenv", "hatch", "rye"})
_PYTHON = re.compile(r"python[0-9.]*")
_PYTHON_OPTIONS_WITH_VALUE = frozenset({"-X", "-W", "--check-hash-based-pycs"})


#: A check as given: a command line (sh or plain words), or an exact argv (a library caller's list).
Check: TypeAlias = str | Sequence[str]


@dataclass(frozen=True)
class CheckSpec:
    argv: list[str]
    display: str
    shell: bool
    timeout: float | None  # None or 0: no limit
    red_exit: frozenset[int] | None = None  # --red-exit: the codes that mean "tests failed"; None: the rules
    runner: str | None = None  # "pytest" when the check runs pytest: its own codes 2-5 are not failed tests


def needs_shell(command: str) -> bool:
    """Whether *command* has shell syntax (see the module docstring); quoting errors are sh's to report."""
    if any(char in _SHELL_CHARACTERS for char in command):
        return True
    try:
        words = shlex.split(command)
    except ValueError:
        return False  # plain words with bad quoting: parse() says so
    return bool(words) and (words[0] in _SHELL_WORDS or _ASSIGNMENT.match(words[0]) is not None)


def parse(
    command: Check,
    *,
    shell: bool = False,
    timeout: float | None = None,
    red_exit: frozenset[int] | None = None,
) -> CheckSpec:
    """A check command; bad quoting or sh syntax, or an empty command, is a usage error (exit 2)."""
    if timeout is not None and (timeout < 0 or math.isnan(timeout)):
        raise UsageError(f"check timeout {timeout!r} must be a non-negative number of seconds")
    if red_exit is not None and (not red_exit or 0 in red_exit):
        raise UsageError("--red-exit lists the nonzero exit codes that mean the tests failed")
    limit = timeout or None
    if not isinstance(command, str):
        argv = list(command)
        if shell:
            raise UsageError("shell=True takes a command line string, not an argv list")
        if not argv or not argv[0] or not all(isinstance(word, str) for word in argv):
            raise UsageError("the check command is empty")
        return CheckSpec(argv, shlex.join(argv), False, limit, red_exit, _runner([argv]))
    if not command.strip():
        raise UsageError("the --check command is empty")
    if shell or needs_shell(command):
        error = process.shell_syntax_error(SHELL, command)
        if error is not None:
            raise UsageError(f"the --check command is not valid sh: {error}", hint="fix the command line")
        return CheckSpec([SHELL, "-c", command], command, True, limit, red_exit, _runner(_shell_commands(command)))
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse --check {command!r}: {exc}", hint="fix the quoting") from exc
    if not argv or not argv[0]:
        raise UsageError("the --check command is empty")
    return CheckSpec(argv, command, False, limit, red_exit, _runner([argv]))


def parse_codes(text: str) -> frozenset[int]:
    """``--red-exit 1`` or ``1,3``: exit codes from 1 to 255."""
    codes: set[int] = set()
    for item in text.split(","):
        word = item.strip()
        if not word.isdigit() or not 1 <= int(word) <= 255:
            raise UsageError(f"--red-exit {text!r}: give exit codes from 1 to 255, separated by commas")
        codes.add(int(word))
    return frozenset(codes)


def _shell_commands(command: str) -> list[list[str]]:
    """The simple commands of a sh command line, as well as shlex can tell (for :func:`_runner`)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token and all(char in lexer.punctuation_chars for char in token):
                commands.append([])
            else:
                commands[-1].append(token)
    except ValueError:
        return []
    return [words for words in commands if words]


def _runner(commands: list[list[str]]) -> str | None:
    """``pytest`` if any of *commands* runs pytest (``pytest``, ``py.test``, ``python -m pytest``)."""
    for words in commands:
        rest = list(words)
        while rest and (_ASSIGNMENT.match(rest[0]) or rest[0] in _LAUNCHERS or rest[0].startswith("-")):
            rest.pop(0)
        if len(rest) > 1 and rest[0] in _RUNNER_RUN and rest[1] == "run":
            rest = rest[2:]
        if not rest:
            continue
        program = os.path.basename(rest[0])
        if program in ("pytest", "py.test"):
            return "pytest"
        if _PYTHON.fullmatch(program):
            options = rest[1:]
            while options and options[0].startswith("-") and options[0] not in ("-m", "-mpytest", "-c"):
                del options[: 2 if options[0] in _PYTHON_OPTIONS_WITH_VALUE else 1]
            if options[:2] == ["-m", "pytest"] or options[:1] == ["-mpytest"]:
                return "pytest"
    return None
