"""``gitxact`` entry point: parse, dispatch, map errors. No logic lives here.

Commands are loaded lazily from :data:`COMMANDS`, so ``gitxact tracker incr`` does not
pay for importing the demo or the transaction engine.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

import click

from gitxact import error_handler
from gitxact._version import __version__
from gitxact.cli.app import AppContext
from gitxact.cli.fast import PATH_OPTION
from gitxact.errors import EXIT_USAGE
from gitxact.git import run as git
from gitxact.util import startup

#: command name → (module under gitxact.cli, attribute). One line per command.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init_cmd", "init"),
    "status": ("status_cmd", "status"),
    "lock": ("lock_cmd", "lock"),
    "tracker": ("tracker_cmd", "tracker"),
    "demo": ("demo_cmd", "demo"),
    "doctor": ("doctor_cmd", "doctor"),
    "git": ("git_cmd", "git_command"),
    "gc": ("gc_cmd", "gc"),
    "hooks": ("hooks_cmd", "hooks"),
    "hook": ("hooks_cmd", "hook"),
    "worktree": ("worktree_cmd", "worktree"),
    "tx": ("tx_cmd", "tx"),
    "tdd": ("tdd_cmd", "tdd"),
    "recover": ("recover_cmd", "recover"),
    "shim": ("shim_cmd", "shim"),
    "land": ("land_cmd", "land"),
    "snapshots": ("snapshots_cmd", "snapshots"),
    "framework-hook": ("framework_hook_cmd", "framework_hook"),
    "integrate": ("integrate_cmd", "integrate"),
    "hook-claude": ("hook_claude_cmd", "hook_claude"),
    "stats": ("stats_cmd", "stats"),
    "watch": ("watch_cmd", "watch"),
    "mcp": ("mcp_cmd", "mcp"),
    "conflicts": ("conflicts_cmd", "conflicts"),
    "trust": ("trust_cmd", "trust"),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and name not in COMMANDS:
            import difflib

            near = difflib.get_close_matches(name, list(COMMANDS), n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise click.UsageError(f"No such command {name!r}.{hint}", ctx)
        return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module = importlib.import_module(f"gitxact.cli.{target[0]}")
        command = getattr(module, target[1])
        if not isinstance(command, click.Command):  # pragma: no cover - a wiring bug
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    PATH_OPTION,
    "paths",
    multiple=True,
    metavar="PATH",
    help="Run as if started in PATH (any folder inside any worktree), like git -C.",
)
@click.version_option(__version__, "--version", prog_name="gitxact")
@click.pass_context
def cli(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """gitxact: many agents, one git repository, no lost work.

    Serializes git work through a lock hierarchy, leases a worktree and branch to each
    agent, runs multi-step changes as transactions with savepoints, and refuses gc and
    prune while agents are active.

    \b
    Examples:
      gitxact init
      gitxact status --json
      gitxact lock --timeout 10 -- make release
      gitxact tracker incr tasks.done
    """
    ctx.obj = AppContext(paths)


def main(argv: Sequence[str] | None = None) -> int:
    startup.skip_pydantic_plugins()
    args = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        git.absolutize_inherited_env()
        # Bare `gitxact`: the help, as a question answered, not an error (shell completion
        # also runs it bare, with its request in the environment: that is click's).
        if not args and "_GITXACT_COMPLETE" not in os.environ:
            with click.Context(cli, info_name="gitxact") as ctx:
                click.echo(cli.get_help(ctx))
            return 0
        try:
            result = cli.main(args=args, prog_name="gitxact", standalone_mode=False)
        except click.exceptions.Exit as exc:
            return int(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("gitxact: aborted", err=True)
            return 130
        except click.ClickException as exc:
            message = exc.format_message()
            click.echo(f"gitxact: error: {message}", err=True)
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                click.echo(f"hint: see `{exc.ctx.command_path} --help`", err=True)
            return EXIT_USAGE if isinstance(exc, click.UsageError) else exc.exit_code
        return result if isinstance(result, int) else 0

    return error_handler.guarded(body)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
