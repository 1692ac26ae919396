"""``gitxact tracker get/set/incr``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from gitxact.cli.app import AppContext
from gitxact.cli.context import emit, json_option, pass_app, show, timeout_option
from gitxact.cli.fast import DEFAULT_AMOUNT, tracker_incr

if TYPE_CHECKING:
    from gitxact.cli.tracker_docs import EntryDoc


@click.group()
def tracker() -> None:
    """The shared coordination tracker: atomic, versioned key -> JSON values.

    \b
    Examples:
      gitxact tracker incr tasks.done
      gitxact tracker set plan/step '"review"' --expect-version 3
      gitxact tracker get plan/step --json
    """


def _entry_doc(key: str, entry: Any) -> Callable[[], EntryDoc]:
    """Built only for ``--json``: the documents are pydantic models, which the plain
    output (what agents run in loops) never imports."""

    def build() -> EntryDoc:
        from gitxact.cli.tracker_docs import EntryDoc

        return EntryDoc(key=key, value=entry.value, version=entry.version, updated=entry.updated, by=entry.by)

    return build


@tracker.command()
@click.argument("key", required=False)
@json_option
@pass_app
def get(app: AppContext, key: str | None, as_json: bool) -> int:
    """Print KEY's value (or every entry). Exit 1 if KEY does not exist.

    \b
    Example:
      gitxact tracker get tasks.done
    """
    import json

    entries = app.workspace().tracker.get(key)
    if key is not None:
        entry = entries[key]
        show(_entry_doc(key, entry), as_json, lambda: json.dumps(entry.value))
        return 0
    if as_json:
        from gitxact.cli.tracker_docs import EntriesDoc

        emit(EntriesDoc(entries={k: e.model_dump(mode="json") for k, e in sorted(entries.items())}))
    else:
        for name, entry in sorted(entries.items()):
            click.echo(f"{name}\tv{entry.version}\t{json.dumps(entry.value)}")
    return 0


@tracker.command(name="set")
@click.argument("key")
@click.argument("value", metavar="JSON")
@click.option(
    "--expect-version", type=click.IntRange(min=0), help="Refuse (exit 3) unless KEY is at this version (0: absent)."
)
@timeout_option
@json_option
@pass_app
def set_(
    app: AppContext, key: str, value: str, expect_version: int | None, timeout: float | None, as_json: bool
) -> int:
    """Set KEY to a JSON value, optionally only if nobody changed it since version N.

    JSON `-` reads the value from stdin: one argument can hold at most 128 KiB on Linux, a
    value up to 1 MiB.

    \b
    Examples:
      gitxact tracker set owner/parser '"alice"' --expect-version 0
      gitxact tracker set report - < report.json
    """
    import sys

    from gitxact.tracker import parse_json_value

    parsed = parse_json_value(sys.stdin.read() if value == "-" else value)
    entry = app.workspace(timeout=timeout).tracker.set(key, parsed, expect_version)
    shown = value if value != "-" else "(from stdin)"
    show(_entry_doc(key, entry), as_json, lambda: f"{key} = {shown} (version {entry.version})")
    return 0


@tracker.command()
@click.argument("key")
@click.argument("amount", type=int, default=DEFAULT_AMOUNT, required=False)
@timeout_option
@json_option
@pass_app
def incr(app: AppContext, key: str, amount: int, timeout: float | None, as_json: bool) -> int:
    """Add AMOUNT (default 1) to the integer at KEY, atomically; prints the new value.

    \b
    Example:
      gitxact tracker incr tasks.done
    """
    if not as_json:  # the one plain body, shared with the click-free path
        return tracker_incr(app, key, amount, timeout)
    entry = app.workspace(timeout=timeout).tracker.incr(key, amount)
    show(_entry_doc(key, entry), as_json, lambda: str(entry.value))
    return 0
