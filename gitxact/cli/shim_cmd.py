"""``gitxact shim install|uninstall [DIR]``."""

from __future__ import annotations

from pathlib import Path

import click

from gitxact.cli.context import json_option, show


@click.group()
def shim() -> None:
    """A `git` that runs gx, for shells and tools that type `git`.

    \b
    Examples:
      gitxact shim install
      gitxact shim install ~/bin/gitxact && export PATH="$HOME/bin/gitxact:$PATH"
    """


@shim.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@json_option
def install(folder: Path | None, as_json: bool) -> int:
    """Write FOLDER/git, which runs gx; put FOLDER first on PATH.

    FOLDER defaults to $XDG_DATA_HOME/gitxact/bin (~/.local/share/gitxact/bin). gx
    finds the real git by skipping the shim on PATH (or takes GITXACT_GIT), so it never
    runs itself. Refused (exit 3) when FOLDER/git exists and is not gitxact's shim.

    \b
    Examples:
      gitxact shim install
      gitxact shim install ./tools/bin --json
    """
    from gitxact.gx import shim as shims

    doc = shims.install(folder)
    show(doc, as_json, lambda: f"installed {doc.path}\nadd it first on PATH:\n  {doc.path_line}")
    return 0


@shim.command()
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@json_option
def uninstall(folder: Path | None, as_json: bool) -> int:
    """Remove FOLDER/git if it is gitxact's shim (anything else is left, exit 3).

    \b
    Example:
      gitxact shim uninstall
    """
    from gitxact.gx import shim as shims

    doc = shims.uninstall(folder)
    show(doc, as_json, lambda: f"removed {doc.path}" if doc.removed else f"no shim at {doc.path}")
    return 0
