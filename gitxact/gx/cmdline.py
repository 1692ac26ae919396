"""Reading a git command line the way git reads it: global options, then the subcommand.

``gx`` must know which subcommand a command line runs before it can pick its locks,
and it must never guess differently from git. So this follows git's own option loop
(``git.c: handle_options`` in git 2.39): options are read while the next word starts
with ``-``; ``-C``, ``-c``, ``--git-dir``, ``--work-tree``, ``--namespace``,
``--config-env``, ``--super-prefix`` and ``--shallow-file`` take a value (separate, or
after ``=`` for the long ones); ``--help``/``-h`` and ``--version``/``-v`` end the loop
and become the ``help`` and ``version`` commands; ``--exec-path`` (without ``=``),
``--html-path``, ``--man-path``, ``--info-path`` and ``--list-cmds=`` print something
and exit. Anything else starting with ``-`` is an option git does not know, which gx
treats like an unknown command (the safe default).

Stdlib only, and no ``typing``/``dataclasses`` import: this runs on gx's fast path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

#: Global options followed by a separate value word.
VALUE_OPTIONS = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env", "--super-prefix", "--shallow-file"}
)
#: Long global options that may carry their value after ``=``.
_EQUALS_OPTIONS = ("--git-dir=", "--work-tree=", "--namespace=", "--config-env=", "--super-prefix=", "--exec-path=")
#: Global options without a value.
FLAG_OPTIONS = frozenset(
    {
        "-p",
        "--paginate",
        "-P",
        "--no-pager",
        "--no-replace-objects",
        "--bare",
        "--literal-pathspecs",
        "--no-literal-pathspecs",
        "--glob-pathspecs",
        "--noglob-pathspecs",
        "--icase-pathspecs",
        "--no-optional-locks",
    }
)
#: Options that print something and exit: git runs no command at all.
QUERY_OPTIONS = frozenset({"--exec-path", "--html-path", "--man-path", "--info-path"})
#: The options that change which repository, worktree or configuration git sees; the
#: queries gx runs for itself (alias lookup, discovery) repeat exactly these.
_LOCATING = ("-C", "-c", "--git-dir", "--work-tree", "--config-env", "--bare", "--namespace")


class Invocation:
    """One git command line, split the way git splits it."""

    __slots__ = ("args", "argv", "command", "command_index", "locating", "problem")

    def __init__(
        self,
        argv: list[str],
        command: str | None,
        command_index: int,
        locating: list[str],
        problem: str | None = None,
    ) -> None:
        #: The words as given (what gx hands to git, unchanged).
        self.argv = argv
        #: The subcommand (``help``/``version`` for ``--help``/``--version``), or None.
        self.command = command
        #: Where the subcommand is in ``argv`` (``len(argv)`` when there is none).
        self.command_index = command_index
        #: The global options that locate the repository and its config, in order.
        self.locating = locating
        #: Why git would stop before running a command (unknown option, query option).
        self.problem = problem
        #: The subcommand's own arguments.
        self.args = argv[command_index + 1 :] if command is not None else []

    def workdir(self, start: str) -> str:
        """Where git will run: *start* moved by every ``-C`` in turn (``-C ''`` is a no-op)."""
        path = start
        i = 0
        while i < len(self.locating):
            word = self.locating[i]
            if word in VALUE_OPTIONS:
                if word == "-C" and self.locating[i + 1]:
                    path = os.path.join(path, self.locating[i + 1])
                i += 2
            else:
                i += 1
        return path

    def with_command(self, words: list[str]) -> Invocation:
        """This invocation with the subcommand and its arguments replaced (alias expansion)."""
        return parse([*self.argv[: self.command_index], *words])

    def __repr__(self) -> str:
        return f"Invocation(command={self.command!r}, args={self.args!r}, locating={self.locating!r})"


def parse(argv: Sequence[str]) -> Invocation:
    """Split *argv* (the words after ``git``) into global options and the subcommand."""
    words = list(argv)
    locating: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if not word.startswith("-"):
            return Invocation(words, word, i, locating)
        if word in ("--help", "-h"):
            return Invocation(words, "help", i, locating)
        if word in ("--version", "-v"):
            return Invocation(words, "version", i, locating)
        if word in QUERY_OPTIONS or word.startswith("--list-cmds="):
            return Invocation(words, None, len(words), locating, problem="query")
        if word in VALUE_OPTIONS:
            if i + 1 >= len(words):
                return Invocation(words, None, len(words), locating, problem=f"{word} needs a value")
            if word in _LOCATING:
                locating += [word, words[i + 1]]
            i += 2
            continue
        if word.startswith(_EQUALS_OPTIONS):
            if word.split("=", 1)[0] in _LOCATING:
                locating.append(word)
            i += 1
            continue
        if word in FLAG_OPTIONS:
            if word in _LOCATING:
                locating.append(word)
            i += 1
            continue
        return Invocation(words, None, len(words), locating, problem=f"unknown option: {word}")
    return Invocation(words, None, len(words), locating)


def split_alias(value: str) -> list[str] | None:
    """Split an alias value as git's ``split_cmdline`` (alias.c) does; ``None`` if the quoting is broken.

    Words part at git's whitespace (space, tab, newline, carriage return); ``'`` and
    ``"`` quote; a backslash takes the next character as is, except inside single
    quotes. (Not ``shlex``: its rules differ inside double quotes, and importing it costs
    ``re``.) tests/test_gx.py compares this with what git itself makes of each value.
    """
    words: list[str] = []
    word: list[str] = []
    quoted = ""
    at = 0
    while at < len(value):
        char = value[at]
        if not quoted and char in _GIT_SPACE:
            words.append("".join(word))
            word = []
            while at + 1 < len(value) and value[at + 1] in _GIT_SPACE:
                at += 1
        elif not quoted and char in "'\"":
            quoted = char
        elif char == quoted:
            quoted = ""
        else:
            if char == "\\" and quoted != "'":
                at += 1
                if at == len(value):
                    return None
                char = value[at]
            word.append(char)
        at += 1
    if quoted:
        return None
    words.append("".join(word))
    return words


_GIT_SPACE = " \t\n\r"


def positionals(args: Sequence[str], value_options: frozenset[str] = frozenset()) -> list[str]:
    """The non-option words of a subcommand's arguments.

    Options in *value_options* consume the next word (or the rest of a short cluster,
    ``-mmsg``); everything after ``--`` is positional; a lone ``-`` is positional.
    """
    found: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            found += args[i:]
            break
        if word.startswith("--"):
            if "=" not in word and word in value_options:
                i += 1
            continue
        if word.startswith("-") and word != "-":
            for pos, letter in enumerate(word[1:], start=1):
                if f"-{letter}" in value_options:
                    if pos == len(word) - 1:
                        i += 1  # the value is the next word
                    break
            continue
        found.append(word)
    return found


def has_option(args: Sequence[str], names: frozenset[str], value_options: frozenset[str] = frozenset()) -> bool:
    """Whether any of *names* appears among the options of *args* (before ``--``).

    Short names match inside clusters (``-ad`` has ``-d``); long names match their
    unambiguous abbreviations too, as git's parse-options accepts (``--del``), and
    ``--name=value``. A word that is the value of a previous option is not an option.
    """
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if word == "--":
            return False
        if word.startswith("--") and len(word) > 2:
            name = word.split("=", 1)[0]
            if name in names or (len(name) >= 5 and any(n.startswith(name) for n in names if n.startswith("--"))):
                return True
            if "=" not in word and name in value_options:
                i += 1
            continue
        if word.startswith("-") and len(word) > 1:
            for pos, letter in enumerate(word[1:], start=1):
                if f"-{letter}" in names:
                    return True
                if f"-{letter}" in value_options:
                    if pos == len(word) - 1:
                        i += 1
                    break
    return False
