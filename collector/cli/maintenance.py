"""``hezo-collector maintenance list|add|remove``: maintenance windows, during which no ticket opens.

hezo-collector maintenance list [--json]
hezo-collector maintenance add NAME --site S [--agent A] [--device D] [--reason R]
    (--days mon,tue --start 22:00 --end 06:00 | --from ISO --until ISO)
hezo-collector maintenance remove NAME
"""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.context import Context
from collector.cli.table import print_rows
from collector.cli.tickets import moment
from collector.registry import maintenance

COMMANDS = ("maintenance",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("maintenance", help="maintenance windows: no tickets while they last")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list maintenance windows")
    listing.add_argument("--json", action="store_true")
    adding = actions.add_parser("add", help="add a recurring or one-off window")
    adding.add_argument("name")
    adding.add_argument("--site", required=True)
    adding.add_argument("--agent")
    adding.add_argument("--device")
    adding.add_argument("--days", help="comma-separated: mon,tue,wed,thu,fri")
    adding.add_argument("--start", help="local time the window opens, like 22:00")
    adding.add_argument("--end", help="local time it closes, like 06:00 (next day if not after start)")
    adding.add_argument("--from", dest="starts_at", type=moment, help="one-off: start, ISO with time zone")
    adding.add_argument("--until", dest="ends_at", type=moment, help="one-off: end, ISO with time zone")
    adding.add_argument("--reason")
    removing = actions.add_parser("remove", help="remove a window")
    removing.add_argument("name")


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    if args.action == "add":
        row = maintenance.values(
            name=args.name,
            site=args.site,
            agent=args.agent,
            device=args.device,
            days=[day.strip() for day in args.days.split(",")] if args.days else None,
            start=args.start,
            end=args.end,
            starts_at=args.starts_at,
            ends_at=args.ends_at,
            reason=args.reason,
        )
        with engine.begin() as conn:
            maintenance.add(conn, row, by=context.actor)
        print(f"maintenance window {args.name} added")
        return 0
    if args.action == "remove":
        with engine.begin() as conn:
            maintenance.remove(conn, args.name, by=context.actor)
        print(f"maintenance window {args.name} removed")
        return 0
    with engine.connect() as conn:
        rows = maintenance.list_windows(conn)
    for row in rows:
        row["days"] = ",".join(row["days"]) if row["days"] else None
    columns = [
        "name",
        "site",
        "agent",
        "device",
        "days",
        "start_time",
        "end_time",
        "starts_at",
        "ends_at",
        "source",
    ]
    return print_rows(rows, columns, as_json=args.json, what="maintenance windows")
