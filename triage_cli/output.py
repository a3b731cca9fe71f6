"""Consoles for the command line: tables as wide as the terminal, and never wrapped in logs or pipes."""

from __future__ import annotations

from rich.console import Console

# Outside a terminal rich assumes 80 columns and wraps every wider row: logs and pipes get this width instead.
LOG_WIDTH = 240


def make_console(stderr: bool = False) -> Console:
    """The terminal's width on a terminal; LOG_WIDTH (unless COLUMNS says otherwise) in logs and pipes."""
    console = Console(stderr=stderr)
    if console.is_terminal or console.is_jupyter:
        return console
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=False)
