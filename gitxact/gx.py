"""``gx``: ``git`` with the locks each command needs. ``alias git=gx`` is the intended use.

The command line is read the way git reads it (:mod:`gitxact.gitargs`), an alias is
expanded the way git expands it (asking git, so ``-c``/``-C``/includes all count),
and the result is looked up in :mod:`gitxact.classify`'s table. Then either:

* **read-only** (``status``, ``log``, ``diff``...): this process *becomes* git
  (``execvpe``) with ``GIT_OPTIONAL_LOCKS=0``. Signals, the terminal, the pager and the
  exit code are git's own, and nothing heavy was imported: this path must cost less
  than 1.5 bare Python start-ups over ``git`` itself (``scripts/bench``), so it loads no
  GitPython, pydantic, click, filelock or state layer (tests/test_gx.py checks).
* **anything else**: :mod:`gitxact.wrapper` takes the locks, asks the guard, and runs
  git as a child with the caller's stdin/stdout/stderr, returning git's exit code.

The words are handed to git unchanged in both cases, so git's own behaviour (``--``,
``--help``, aliases, unknown commands, its error messages) is preserved exactly.
"""

from __future__ import annotations

import os
import sys

from gitxact import classify, gitargs, gitlite
from gitxact.errors import GitxactError

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
    given = gitargs.parse(args)
    resolved, rule = resolve(given)
    if rule.lock == classify.READ_ONLY:
        gitlite.exec_git(args, gitlite.passthrough_env({gitlite.OPTIONAL_LOCKS_ENV: "0"}))
    from gitxact import error_handler, wrapper

    return error_handler.guarded(lambda: wrapper.run_locked(args, given, resolved, rule))


def resolve(given: gitargs.Invocation) -> tuple[gitargs.Invocation, classify.Rule]:
    """Expand aliases as git would and classify the command that will really run.

    git runs a builtin if there is one, else a ``git-NAME`` program, else the alias
    (``git.c: run_argv``). Builtins are in the table, so only other names are looked up;
    an alias that is shadowed by a program, or that runs a shell (``!cmd``), or that
    does not parse, is an unknown command (worktree-level lock: the safe default).
    """
    current = given
    seen: set[str] = set()
    while current.command is not None and not classify.is_known(current.command):
        name = current.command
        if name in seen or len(seen) >= MAX_ALIAS_DEPTH:
            return current, classify.W  # git reports the loop itself
        seen.add(name)
        value = alias_of(current)
        if value is None or value.startswith("!"):
            return current, classify.W
        words = gitargs.split_alias(value)
        if not words:
            return current, classify.W
        expanded = current.with_command([*words, *current.args])
        if expanded.problem is not None:
            return current, classify.W
        current = expanded
    rule = classify.rule_for(current)
    if seen and rule.lock == classify.READ_ONLY and _program_exists(given, given.command or ""):
        return given, classify.W  # `git-NAME` on PATH wins over the alias
    return current, rule


def alias_of(invocation: gitargs.Invocation) -> str | None:
    """``alias.NAME`` as the user's git sees it (same cwd, ``-C``, ``-c``, ``GIT_DIR``)."""
    code, out = gitlite.capture(
        [*invocation.locating, "config", "--get", f"alias.{invocation.command}"], gitlite.passthrough_env()
    )
    return out.removesuffix("\n") if code == 0 else None


def _program_exists(invocation: gitargs.Invocation, name: str) -> bool:
    folders = os.environ.get("PATH", "").split(os.pathsep)
    code, out = gitlite.capture([*invocation.locating, "--exec-path"], gitlite.passthrough_env())
    if code == 0:
        folders.insert(0, out.strip())
    return any(os.access(os.path.join(folder or ".", f"git-{name}"), os.X_OK) for folder in folders)
