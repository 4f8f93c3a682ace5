"""``hezo-collector contracts list|coverage|add|remove``: the HEZO+ contract registry and each device's
coverage by it.

hezo-collector contracts list|coverage [--json] [--problems]
hezo-collector contracts add NUMBER --start DATE --years N [--customer C] [--contact EMAIL] [--serial S ...]
hezo-collector contracts remove NUMBER
"""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from collector.cli.context import Context
from collector.cli.table import print_rows
from collector.registry import contracts
from collector.store.database import utcnow

COMMANDS = ("contracts",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("contracts", help="the HEZO+ contract registry and device coverage")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, what in (("list", "registered contracts"), ("coverage", "each device's coverage")):
        listing = actions.add_parser(name, help=f"list {what}")
        listing.add_argument("--json", action="store_true")
        if name == "coverage":
            listing.add_argument("--problems", action="store_true", help="only devices with a warning")
    adding = actions.add_parser("add", help="register (or replace) a contract")
    adding.add_argument("number")
    adding.add_argument("--start", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    adding.add_argument("--years", required=True, type=int, help="1 to 5")
    adding.add_argument("--customer")
    adding.add_argument("--contact", help="the customer's e-mail address for updates")
    adding.add_argument("--serial", action="append", default=[], help="a serial the contract covers")
    removing = actions.add_parser("remove", help="remove a contract from the registry")
    removing.add_argument("number")


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    days = context.config.incidents.contract_warning_days
    calendars = context.sla.calendars
    if args.action == "add":
        row = contracts.values(
            number=args.number,
            start=args.start,
            years=args.years,
            customer=args.customer,
            serials=args.serial,
            contact=args.contact,
        )
        with engine.begin() as conn:
            contracts.put(conn, row, by=context.actor, now=utcnow())
        print(f"contract {args.number} registered")
        return 0
    if args.action == "remove":
        with engine.begin() as conn:
            contracts.remove(conn, args.number, by=context.actor, now=utcnow())
        print(f"contract {args.number} removed")
        return 0
    now = utcnow()
    with engine.connect() as conn:
        if args.action == "list":
            rows = contracts.list_contracts(conn, calendars.default.local(now).date(), days)
            columns = ["number", "start", "years", "ends", "state", "customer", "contact"]
        else:
            rows = contracts.device_coverage(conn, lambda site: calendars[site].local(now).date(), days)
            if args.problems:
                rows = [row for row in rows if row["warning"] is not None]
            columns = ["site", "agent", "device", "serial", "contract", "state", "ends", "warning"]
    return print_rows(rows, columns, as_json=args.json, what=args.command)
