"""Rows the command line prints: a JSON list, or an aligned table whose cells cannot drive a terminal."""

import json
from typing import Any

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
    cells = [
        [("" if row.get(col) is None else printable(str(row.get(col)))) for col in columns] for row in rows
    ]
    widths = [max(len(col), *(len(line[i]) for line in cells)) for i, col in enumerate(columns)]
    print("  ".join(col.upper().ljust(width) for col, width in zip(columns, widths, strict=True)).rstrip())
    for line in cells:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
    return 0
