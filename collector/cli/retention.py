"""``hezo-collector retention run|status``: apply the store's retention now, or see what each table keeps.

hezo-collector retention run [--json]
hezo-collector retention status [--json]
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from collector.cli.context import STORE_ERRORS, CommandFailed, Context, reason
from collector.cli.table import print_rows
from collector.store.database import utcnow
from collector.store.queries import jsonable
from collector.store.retention import marks, status
from collector.store.retention import run as run_retention

COMMANDS = ("retention",)

COLUMNS = ["table", "days", "rows", "bytes", "partitions"]


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("retention", help="drop what is past the store's retention, or show it")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    running = actions.add_parser("run", help="apply retention once, now (the collector does it by itself)")
    running.add_argument("--json", action="store_true")
    showing = actions.add_parser("status", help="per table: days kept, rows, bytes, day partitions")
    showing.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    settings = context.config.retention
    if args.action == "run":
        try:
            outcome = run_retention(engine, settings, utcnow())
        except STORE_ERRORS as exc:  # a lock held too long, the database gone: each batch done stays done
            raise CommandFailed(f"retention stopped: {reason(exc)}; run it again") from None
        if outcome.skipped:
            raise CommandFailed(
                "a retention run is going on this store already (a collector's); try again later"
            )
        done = {
            "partitions made": {table: len(days) for table, days in outcome.made.items()},
            "partitions dropped": {table: len(days) for table, days in outcome.dropped.items()},
            "rows deleted": dict(outcome.deleted),
            "hours rolled up": outcome.hours,
            "hours left out of the history": jsonable(outcome.hours_skipped),
        }
        if args.json:
            print(json.dumps(done))
        else:
            for what, value in done.items():
                print(f"{what}: {value}")
        return 0
    with engine.connect() as conn:
        rows = status(conn, settings)
        kept = marks(conn)
    if args.json:
        print(json.dumps({"tables": jsonable(rows), "marks": jsonable(kept)}))
        return 0
    print_rows(rows, COLUMNS, as_json=False, what="tables")
    for name, moment in kept.items():
        print(f"{name}: {jsonable(moment) if moment is not None else '-'}")
    return 0
