"""``hezo-collector audit list [--limit N] [--json]``: the audit log, newest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from collector import audit
from collector.cli.context import Context
from collector.cli.table import printable
from collector.store import queries

COMMANDS = ("audit",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("audit", help="the audit log of commands")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="newest first")
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, context: Context) -> int:
    with context.engine().connect() as conn:
        rows = queries.jsonable(audit.list_audit(conn, args.limit))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(
            printable(
                f"{row['at']}  {row['event']:<14} {row['actor']:<22} {row['site'] or '-'}/"
                f"{row['agent'] or '-'}  {row['command_id'] or '-'}  {row['action'] or '-'}  "
                f"{row['detail']}"
            )
        )
    return 0
