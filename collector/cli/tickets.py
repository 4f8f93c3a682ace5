"""``hezo-collector tickets ...``: list, show, open by hand, note, change a priority, and the lifecycle steps.

hezo-collector tickets list [--json]
hezo-collector tickets show NUMBER [--json]
hezo-collector tickets open --site S [--agent A --device D] [--priority low] --summary TEXT
hezo-collector tickets respond|confirm|ship|deliver|return|resolve|close NUMBER [--text TEXT]
hezo-collector tickets confirm NUMBER [--deliver-by 2026-12-01T12:00+01:00]
hezo-collector tickets note NUMBER --text TEXT [--update]
hezo-collector tickets priority NUMBER critical|high|low [--text WHY]

Each change is recorded as ``local:<OS user>``; ``--by`` is still accepted from older scripts, and ignored.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from collector import tickets
from collector.cli.context import Context
from collector.cli.listing import add_list
from collector.cli.table import print_rows, printable
from collector.store import queries
from collector.store.database import utcnow

COMMANDS = ("tickets",)

COLUMNS = [
    "number",
    "priority",
    "cause",
    "status",
    "sla_state",
    "site",
    "agent",
    "device",
    "serial",
    "contract",
    "opened_at",
    "response_due",
]


def moment(text: str) -> datetime:
    """An ISO time with its time zone, for a command line argument."""
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a time zone, like 2026-12-01T12:00+01:00")
    return value


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("tickets", help="look at tickets and move them along")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_list(actions, "tickets")
    show = actions.add_parser("show", help="one ticket with its deadlines, SLA state and timeline")
    show.add_argument("number")
    show.add_argument("--json", action="store_true", help="print JSON instead of text")
    opening = actions.add_parser("open", help="open a ticket by hand (a question, a change: Low by default)")
    opening.add_argument("--site", required=True)
    opening.add_argument("--agent", default="")
    opening.add_argument("--device", default="")
    opening.add_argument("--priority", choices=tickets.PRIORITIES, default=tickets.PRIORITY_LOW)
    opening.add_argument("--summary", required=True)
    opening.add_argument("--by", help=argparse.SUPPRESS)
    for name, move in tickets.STEPS.items():
        parser = actions.add_parser(name, help=f"the ticket is {move.done}")
        parser.add_argument("number")
        parser.add_argument("--by", help=argparse.SUPPRESS)
        parser.add_argument("--text", help="what to write in the timeline")
        if name == "confirm":
            parser.add_argument("--deliver-by", type=moment, help="a later delivery date the user accepted")
    priority = actions.add_parser("priority", help="give the ticket another priority (before confirmation)")
    priority.add_argument("number")
    priority.add_argument("priority", choices=tickets.PRIORITIES)
    priority.add_argument("--text", help="why: said in the timeline")
    noting = actions.add_parser("note", help="add a note to the timeline")
    noting.add_argument("number")
    noting.add_argument("--by", help=argparse.SUPPRESS)
    noting.add_argument("--text", required=True)
    noting.add_argument(
        "--update", action="store_true", help="the reporter was updated: resets the update clock"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    if args.action == "list":
        with engine.connect() as conn:
            rows = tickets.list_tickets(conn)
        return print_rows(rows, COLUMNS, as_json=args.json, what="tickets")
    return _tickets(engine, context, args)


def _tickets(engine: Any, context: Context, args: argparse.Namespace) -> int:
    now = utcnow()
    by = context.actor
    if getattr(args, "by", None) not in {None, by}:
        print(f"hezo-collector: --by is ignored: the change is recorded as {by}", file=sys.stderr)
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
                by=by,
                now=now,
                context=context.sla,
            )
        elif args.action == "note":
            tickets.note(conn, number, args.text, by=by, now=now, context=context.sla, is_update=args.update)
        elif args.action == "priority":
            tickets.reprioritise(
                conn, number, args.priority, by=by, now=now, context=context.sla, text=args.text
            )
        elif args.action in tickets.STEPS:
            tickets.step(
                conn,
                number,
                args.action,
                by=by,
                now=now,
                context=context.sla,
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
