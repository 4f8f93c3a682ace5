"""``hezo-collector devices|rejected list [--json]``: what the store holds, as a table or JSON."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection

from collector.cli.context import Context
from collector.cli.table import print_rows
from collector.store import queries

#: Each listing: what it is called, how to read it, the columns of its table.
LISTS: dict[str, tuple[str, Callable[[Connection], list[dict[str, Any]]], list[str]]] = {
    "devices": (
        "devices",
        queries.list_devices,
        ["site", "agent", "device", "model", "serial", "room", "contract", "state", "state_since"],
    ),
    "rejected": ("rejected messages", queries.list_rejected, ["received_at", "reason", "topic", "error"]),
}

COMMANDS = tuple(LISTS)


def add_list(actions: Any, what: str) -> None:
    """The ``list`` action of a group, with ``--json``."""
    listing = actions.add_parser("list", help=f"list {what}")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def add_parsers(commands: Any) -> None:
    for name, (what, _fetch, _columns) in LISTS.items():
        group = commands.add_parser(name, help=f"look at {what}")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        add_list(actions, what)


def run(args: argparse.Namespace, context: Context) -> int:
    _what, fetch, columns = LISTS[args.command]
    with context.engine().connect() as conn:
        rows = fetch(conn)
    return print_rows(rows, columns, as_json=args.json, what=args.command)
