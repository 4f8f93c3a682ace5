"""``hezo-collector outbox list|retry``: ticket notifications and how their delivery went.

hezo-collector outbox list [--status pending|sent|dead] [--limit N] [--json]
hezo-collector outbox retry (ID ... | --all)
"""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.context import Context
from collector.cli.table import print_rows
from collector.errors import InvalidError
from collector.notify import outbox
from collector.store.database import utcnow

COMMANDS = ("outbox",)

COLUMNS = [
    "id",
    "ticket",
    "event",
    "sink",
    "recipient",
    "status",
    "attempts",
    "next_attempt_at",
    "last_error",
]


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("outbox", help="ticket notifications: what was sent, what waits, what failed")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="deliveries, newest first")
    listing.add_argument("--status", choices=(outbox.PENDING, outbox.SENT, outbox.DEAD))
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    retrying = actions.add_parser("retry", help="send dead deliveries again")
    retrying.add_argument("ids", nargs="*", type=int, metavar="ID", help="delivery ids (outbox list)")
    retrying.add_argument("--all", action="store_true", help="every dead delivery")


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    if args.action == "list":
        with engine.connect() as conn:
            rows = outbox.list_deliveries(conn, status=args.status, limit=args.limit)
        return print_rows(rows, COLUMNS, as_json=args.json, what="deliveries")
    if bool(args.ids) == args.all:
        raise InvalidError("name the delivery ids to retry, or --all")
    with engine.begin() as conn:
        count = outbox.retry(conn, utcnow(), None if args.all else args.ids, by=context.actor)
    print(f"{count} deliveries will be sent again")
    return 0
