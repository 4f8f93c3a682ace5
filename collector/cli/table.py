"""Rows the command line prints: a JSON list, or a table (rich) whose cells cannot drive a terminal.

Tables have no borders and never wrap or cut a cell, so a line is one row to ``grep`` and ``awk``; colour
only on a terminal.
"""

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from collector.store import queries


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``, so a hostile topic cannot drive the terminal."""
    return "".join(f"\\x{ord(char):02x}" if ord(char) < 0x20 or ord(char) == 0x7F else char for char in text)


def print_rows(rows: list[dict[str, Any]], columns: list[str], *, as_json: bool, what: str) -> int:
    """Print ``rows`` as JSON or as a table of ``columns`` (``no WHAT`` when empty); the exit status, 0."""
    rows = queries.jsonable(rows)
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    if not rows:
        print(f"no {what}")
        return 0
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for column in columns:
        table.add_column(column.upper(), no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(
            *(Text("" if row.get(col) is None else printable(str(row.get(col)))) for col in columns)
        )
    console = Console(
        file=sys.stdout,
        width=100_000,  # never wrap: a row is one line
        force_terminal=sys.stdout.isatty(),  # piped: plain text, whatever FORCE_COLOR says
        no_color=not sys.stdout.isatty(),
        highlight=False,
        soft_wrap=False,
    )
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        print(line.rstrip())
    return 0
