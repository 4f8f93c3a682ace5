"""``hezo-collector agents list|enrol|revoke|enrolled``: the agents, and which of them the collector trusts.

hezo-collector agents list [--json]
hezo-collector agents enrol SITE/AGENT        # its messages are taken (with ingest.enrolled_only)
hezo-collector agents revoke SITE/AGENT       # no longer
hezo-collector agents enrolled [--json]
"""

from __future__ import annotations

import argparse
import getpass
from typing import Any

from collector.cli.context import Context
from collector.cli.listing import add_list
from collector.cli.table import print_rows
from collector.errors import InvalidError
from collector.ingest import enrolment
from collector.store import queries
from collector.store.database import utcnow
from protocol import ProtocolError, validate_id

COMMANDS = ("agents",)

COLUMNS = ["site", "agent", "online", "boot", "version", "last_seen", "seq_gaps", "seq_missing"]


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("agents", help="agents, the gaps in their messages, and their enrolment")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_list(actions, "agents and the gaps in their messages")
    for name, what in (("enrol", "take this agent's messages"), ("revoke", "stop taking its messages")):
        action = actions.add_parser(name, help=what)
        action.add_argument("agent", metavar="SITE/AGENT")
    listing = actions.add_parser("enrolled", help="the agents enrolled, and those revoked")
    listing.add_argument("--json", action="store_true")


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    if args.action == "list":
        with engine.connect() as conn:
            return print_rows(queries.list_agents(conn), COLUMNS, as_json=args.json, what="agents")
    if args.action == "enrolled":
        with engine.connect() as conn:
            rows = enrolment.list_enrolments(conn)
        columns = ["site", "agent", "enrolled_at", "enrolled_by", "revoked_at", "revoked_by"]
        return print_rows(rows, columns, as_json=args.json, what="enrolled agents")
    site, agent = _agent(args.agent)
    by = f"local:{getpass.getuser()}"
    with engine.begin() as conn:
        if args.action == "enrol":
            enrolment.enrol(conn, site, agent, by=by, at=utcnow())
        else:
            enrolment.revoke(conn, site, agent, by=by, at=utcnow())
    print(f"agent {site}/{agent} {'enrolled' if args.action == 'enrol' else 'revoked'}")
    return 0


def _agent(text: str) -> tuple[str, str]:
    site, _, agent = text.partition("/")
    try:
        return validate_id("site", site), validate_id("agent", agent)
    except ProtocolError as exc:
        raise InvalidError(f"{text!r}: expected SITE/AGENT ({exc})") from None
