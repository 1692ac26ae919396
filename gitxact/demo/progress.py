"""Live progress on stderr: one line per agent, redrawn in place on a terminal.

Off a terminal (a log, CI) nothing is redrawn: each agent's change of phase and each
of the supervisor's notes is one plain line, so a log reads as a story. Colors only
on a terminal without ``NO_COLOR`` (:func:`gitxact.util.console.use_color`).
"""

from __future__ import annotations

import shutil
from typing import TextIO

from gitxact.demo.scenario import AgentRow
from gitxact.util.console import style, use_color


class Progress:
    def __init__(self, rows: list[AgentRow], stream: TextIO, *, commits: int, bumps: int, enabled: bool = True) -> None:
        self.rows = rows
        self.stream = stream
        self.commits = commits
        self.bumps = bumps
        self.enabled = enabled
        isatty = getattr(stream, "isatty", None)
        self.live = enabled and bool(isatty and isatty())
        self.color = self.live and use_color(stream)
        self._drawn = 0
        self._said = {row.name: "" for row in rows}

    def _style(self, text: str, *, fg: str) -> str:
        return style(text, fg=fg, color=self.color)

    def _line(self, row: AgentRow) -> str:
        """One agent's line, cut to the terminal's width: a wrapped line would break the redraw."""
        planned = 2 + self.commits
        text = (
            f"  {row.name:<9}{row.role:<7}{row.phase:<40} commits {row.commits_acked:>2}/{planned:<2}"
            f"  counter {row.bumps:>3}/{self.bumps:<3}"
        )
        if row.git_failures:
            text += f"  failed git commands {row.git_failures}"
        text = text[: max(20, shutil.get_terminal_size((100, 24)).columns - 1)]
        if row.killed:
            return self._style(text, fg="red")
        if row.phase == "done":
            return self._style(text, fg="green")
        if row.git_failures:
            return self._style(text, fg="yellow")
        return text

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = self.live = False

    def _clear(self) -> str:
        drawn, self._drawn = self._drawn, 0
        return f"\x1b[{drawn}F\x1b[J" if drawn else ""

    def note(self, text: str) -> None:
        """One line from the supervisor (gc refused, an agent killed, recover's actions)."""
        if not self.enabled:
            return
        if self.live:
            self._write(self._clear() + text + "\n")
            self.update()
        else:
            self._write(text + "\n")

    def update(self) -> None:
        if not self.enabled:
            return
        if self.live:
            block = "\n".join(self._line(row) for row in self.rows) + "\n"
            self._write(self._clear() + block)
            self._drawn = len(self.rows)
            return
        for row in self.rows:
            if row.phase != self._said[row.name]:
                self._said[row.name] = row.phase
                self._write(f"  {row.name}: {row.phase}\n")
