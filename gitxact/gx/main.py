"""``gx``: ``git`` with the locks each command needs. ``alias git=gx`` is the intended use.

The command line is read the way git reads it (:mod:`gitxact.gx.cmdline`), an alias is
expanded the way git expands it (asking git, so ``-c``/``-C``/includes all count),
and the result is looked up in :mod:`gitxact.gx.rules`'s table. Then either:

* **read-only** (``log``, ``show``, ``status``...): this process *becomes* git
  (``execvpe``) with ``GIT_OPTIONAL_LOCKS=0``. ``status`` first tries its worktree's lock
  without waiting and, when it is free, lets git refresh the index as plain git would
  (:mod:`gitxact.gx.refresh`). Signals, the terminal, the pager and the
  exit code are git's own, and nothing heavy was imported: this path must cost less
  than 1.5 bare Python start-ups over ``git`` itself (``scripts/bench``), so it loads no
  GitPython, pydantic, click, filelock or state layer (tests/test_gx.py checks).
* **anything else**: :mod:`gitxact.gx.locked` takes the locks, asks the guard, and runs
  git as a child with the caller's stdin/stdout/stderr, returning git's exit code.

The words are handed to git unchanged in both cases, so git's own behaviour (``--``,
``--help``, aliases, unknown commands, its error messages) is preserved exactly.
"""

from __future__ import annotations

import os
import sys

from gitxact.errors import GitxactError
from gitxact.git import lite
from gitxact.gx import cmdline, rules

TYPE_CHECKING = False  # see gitxact/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

#: git gives up on alias chains long before this; so do we (and then lock as unknown).
MAX_ALIAS_DEPTH = 32


def main(argv: Sequence[str] | None = None) -> int:
    """The ``gx`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(args)
    except GitxactError as error:
        from gitxact import error_handler

        return error_handler.report(error)
    except KeyboardInterrupt:
        return 130


def run(args: list[str]) -> int:
    """Run ``git ARGS`` under the locks its subcommand needs; return git's exit code.

    Does not return for read-only commands: the process is replaced by git.
    """
    if args == [GX_VERSION]:
        return _gx_version()
    given = cmdline.parse(args)
    resolved, rule = resolve(given)
    if rule.lock == rules.READ_ONLY:
        if rule.refresh:
            from gitxact.gx import refresh

            code = refresh.try_run(args, given)
            if code is not None:
                return code
        lite.exec_git(args, lite.passthrough_env({lite.OPTIONAL_LOCKS_ENV: "0"}))
    from gitxact import error_handler
    from gitxact.gx import locked

    return error_handler.guarded(lambda: locked.run_locked(args, given, resolved, rule))


#: gx's one option of its own (``--version`` and ``-h`` stay git's).
GX_VERSION = "--gx-version"


def _gx_version() -> int:
    """Which gitxact and which real git this gx runs: one line each, on stdout."""
    from gitxact._version import __version__

    git = lite.real_git()
    code, out = lite.capture(["--version"], lite.passthrough_env())
    sys.stdout.write(f"gx (gitxact {__version__})\n{out.strip() if code == 0 else 'git: unknown version'} ({git})\n")
    return 0


def resolve(given: cmdline.Invocation) -> tuple[cmdline.Invocation, rules.Rule]:
    """Expand aliases as git would and classify the command that will really run.

    git runs a builtin if there is one, else a ``git-NAME`` program, else the alias
    (``git.c: run_argv``). Builtins are in the table, so only other names are looked up;
    an alias that is shadowed by a program, or that runs a shell (``!cmd``), or that
    does not parse, is an unknown command (worktree-level lock: the safe default).
    """
    current = given
    seen: set[str] = set()
    while current.command is not None and not rules.is_known(current.command):
        name = current.command
        if name in seen or len(seen) >= MAX_ALIAS_DEPTH:
            return current, rules.W  # git reports the loop itself
        seen.add(name)
        value = alias_of(current)
        if value is None or value.startswith("!"):
            return current, rules.W
        words = cmdline.split_alias(value)
        if not words:
            return current, rules.W
        expanded = current.with_command([*words, *current.args])
        if expanded.problem is not None:
            return current, rules.W
        current = expanded
    rule = rules.rule_for(current)
    if seen and rule.lock == rules.READ_ONLY and _program_exists(given, given.command or ""):
        return given, rules.W  # `git-NAME` on PATH wins over the alias
    return current, rule


def alias_of(invocation: cmdline.Invocation) -> str | None:
    """``alias.NAME`` as the user's git sees it (same cwd, ``-C``, ``-c``, ``GIT_DIR``)."""
    code, out = lite.capture(
        [*invocation.locating, "config", "--get", f"alias.{invocation.command}"], lite.passthrough_env()
    )
    return out.removesuffix("\n") if code == 0 else None


def _program_exists(invocation: cmdline.Invocation, name: str) -> bool:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    code, out = lite.capture([*invocation.locating, "--exec-path"], lite.passthrough_env())
    if code == 0:
        folders.insert(0, out.strip())
    return any(os.access(os.path.join(folder or ".", f"git-{name}"), os.X_OK) for folder in folders)
