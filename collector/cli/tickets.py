"""The CLI for tickets, contracts and maintenance windows (``hezo-collector tickets|contracts|maintenance``).

hezo-collector tickets show NUMBER [--json]
hezo-collector tickets open --site S [--agent A --device D] [--priority low] --summary TEXT --by NAME
hezo-collector tickets respond|confirm|ship|deliver|return|resolve|close NUMBER --by NAME [--text TEXT]
hezo-collector tickets confirm NUMBER --by NAME [--deliver-by 2026-12-01T12:00+01:00]
hezo-collector tickets note NUMBER --by NAME --text TEXT [--update]
hezo-collector contracts list|coverage [--json] [--problems]
hezo-collector contracts add NUMBER --start DATE --years N [--customer C] [--serial S ...]
hezo-collector contracts remove NUMBER
hezo-collector maintenance list [--json]
hezo-collector maintenance add NAME --site S [--agent A] [--device D] [--reason R]
    (--days mon,tue --start 22:00 --end 06:00 | --from ISO --until ISO)
hezo-collector maintenance remove NAME
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine

from collector import tickets
from collector.cli.table import print_rows, printable
from collector.config import CollectorConfig
from collector.errors import CollectorError
from collector.registry import contracts, maintenance
from collector.sla.terms import SlaContext
from collector.store import queries
from collector.store.database import utcnow

#: Exit status of a refused step or bad input (the reason goes to stderr).
EXIT_REFUSED = 3

GROUPS = ("contracts", "maintenance")


def _moment(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, like 2026-12-01T12:00+01:00")
    return value


def add_ticket_actions(actions: Any) -> None:
    """Add the engineers' ticket actions to the ``tickets`` subcommand."""
    show = actions.add_parser("show", help="one ticket with its deadlines, SLA state and timeline")
    show.add_argument("number")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    opening = actions.add_parser("open", help="open a ticket by hand (a question, a change: Low by default)")
    opening.add_argument("--site", required=True)
    opening.add_argument("--agent", default="")
    opening.add_argument("--device", default="")
    opening.add_argument("--priority", choices=tickets.PRIORITIES, default=tickets.PRIORITY_LOW)
    opening.add_argument("--summary", required=True)
    opening.add_argument("--by", required=True, help="who opens it")
    for name, move in tickets.STEPS.items():
        parser = actions.add_parser(name, help=f"the ticket is {move.done}")
        parser.add_argument("number")
        parser.add_argument("--by", required=True, help="the engineer taking the step")
        parser.add_argument("--text", help="what to write in the timeline")
        if name == "confirm":
            parser.add_argument("--deliver-by", type=_moment, help="a later delivery date the user accepted")
    noting = actions.add_parser("note", help="add a note to the timeline")
    noting.add_argument("number")
    noting.add_argument("--by", required=True)
    noting.add_argument("--text", required=True)
    noting.add_argument(
        "--update", action="store_true", help="the reporter was updated: resets the update clock"
    )


def add_groups(commands: Any) -> None:
    """Add ``contracts`` and ``maintenance``."""
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
    adding.add_argument("--serial", action="append", default=[], help="a serial the contract covers")
    removing = actions.add_parser("remove", help="remove a contract from the registry")
    removing.add_argument("number")

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
    adding.add_argument("--from", dest="starts_at", type=_moment, help="one-off: start, ISO with time zone")
    adding.add_argument("--until", dest="ends_at", type=_moment, help="one-off: end, ISO with time zone")
    adding.add_argument("--reason")
    removing = actions.add_parser("remove", help="remove a window")
    removing.add_argument("name")


def handles(args: argparse.Namespace) -> bool:
    """Whether ``run`` takes this command (everything but ``tickets list``)."""
    return args.command in GROUPS or (args.command == "tickets" and args.action != "list")


def run(engine: Engine, config: CollectorConfig, args: argparse.Namespace) -> int:
    context = SlaContext.from_config(config)
    try:
        if args.command == "tickets":
            return _tickets(engine, context, args)
        if args.command == "contracts":
            return _contracts(engine, config, context, args)
        return _maintenance(engine, args)
    except (CollectorError, ValueError) as exc:
        print(f"hezo-collector: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def _tickets(engine: Engine, context: SlaContext, args: argparse.Namespace) -> int:
    now = utcnow()
    number: str = getattr(args, "number", "")
    with engine.begin() as conn:
        if args.action == "open":
            number = tickets.open_by_hand(
                conn,
                site=args.site,
                agent=args.agent,
                device=args.device,
                priority=args.priority,
                summary=args.summary,
                by=args.by,
                now=now,
                context=context,
            )
        elif args.action == "note":
            tickets.note(conn, number, args.text, by=args.by, now=now, context=context, is_update=args.update)
        elif args.action in tickets.STEPS:
            tickets.step(
                conn,
                number,
                args.action,
                by=args.by,
                now=now,
                context=context,
                text=args.text,
                deliver_by=getattr(args, "deliver_by", None),
            )
    assert number is not None
    with engine.connect() as conn:
        ticket = tickets.get_ticket(conn, number)
    if ticket is None:
        raise tickets.NoSuchTicketError(f"no ticket numbered {number!r}")
    if getattr(args, "json", False):
        print(json.dumps(queries.jsonable(ticket), indent=2, ensure_ascii=False))
    else:
        print(render(ticket))
    return 0


def render(ticket: dict[str, Any]) -> str:
    """A ticket as text: what a phone call needs first, then deadlines, then the timeline."""

    def when(value: Any) -> str:
        return "" if value is None else value.strftime("%Y-%m-%d %H:%M UTC")

    place = "/".join(part for part in (ticket["site"], ticket["agent"], ticket["device"]) if part)
    lines = [
        f"{ticket['number']}  {ticket['priority'].upper()}  {ticket['status']}  "
        f"SLA {ticket['sla_state'] or '-'}",
        f"  device   {place} {ticket['model'] or ''} in {ticket['room'] or '-'}",
        f"  serial   {ticket['serial'] or '-'}   contract {ticket['contract'] or '-'}",
        f"  opened   {when(ticket['opened_at'])} by {ticket['opened_by'] or 'collector'}",
        f"  response due {when(ticket['response_due'])}"
        + (f" (responded {when(ticket['responded_at'])})" if ticket["responded_at"] else ""),
    ]
    for label, key in (
        ("next update", "update_due"),
        ("delivery due", "delivery_due"),
        ("return due", "return_due"),
    ):
        if ticket[key] is not None:
            lines.append(f"  {label} {when(ticket[key])}")
    for breach in ticket["breaches"]:
        lines.append(f"  MISSED   {breach['deadline']} deadline {when(breach['due'])}")
    lines.append("  timeline:")
    for entry in ticket["entries"]:
        sla_state = f" [SLA {entry['sla_state']}]" if entry["sla_state"] else ""
        lines.append(
            f"    {when(entry['at'])}  {entry['kind']} by {entry['by'] or 'collector'}{sla_state}: "
            f"{entry['text']}"
        )
    return printable("\n".join(lines)).replace("\\x0a", "\n")


def _contracts(engine: Engine, config: CollectorConfig, context: SlaContext, args: argparse.Namespace) -> int:
    days = config.incidents.contract_warning_days
    if args.action == "add":
        row = contracts.values(
            number=args.number,
            start=args.start,
            years=args.years,
            customer=args.customer,
            serials=args.serial,
        )
        with engine.begin() as conn:
            contracts.put(conn, row)
        print(f"contract {args.number} registered")
        return 0
    if args.action == "remove":
        with engine.begin() as conn:
            contracts.remove(conn, args.number)
        print(f"contract {args.number} removed")
        return 0
    now = utcnow()
    with engine.connect() as conn:
        if args.action == "list":
            rows = contracts.list_contracts(conn, context.calendars.default.local(now).date(), days)
            columns = ["number", "start", "years", "ends", "state", "customer"]
        else:
            rows = contracts.device_coverage(
                conn, lambda site: context.calendars[site].local(now).date(), days
            )
            if args.problems:
                rows = [row for row in rows if row["warning"] is not None]
            columns = ["site", "agent", "device", "serial", "contract", "state", "ends", "warning"]
    return _table(rows, columns, as_json=args.json, what=args.command)


def _maintenance(engine: Engine, args: argparse.Namespace) -> int:
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
            maintenance.add(conn, row)
        print(f"maintenance window {args.name} added")
        return 0
    if args.action == "remove":
        with engine.begin() as conn:
            maintenance.remove(conn, args.name)
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
    return _table(rows, columns, as_json=args.json, what="maintenance windows")


def _table(rows: list[dict[str, Any]], columns: list[str], *, as_json: bool, what: str) -> int:
    return print_rows(rows, columns, as_json=as_json, what=what)
