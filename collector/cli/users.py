"""``hezo-collector users ...``: the people who may use the web page and the API, and their tokens.

hezo-collector users add NAME --role viewer|engineer|admin [--customer C] [--password-stdin | --no-password]
hezo-collector users list [--json]
hezo-collector users passwd NAME [--password-stdin]
hezo-collector users token NAME [--label L] [--days N]
hezo-collector users tokens [NAME] [--json]
hezo-collector users revoke TOKEN_ID
hezo-collector users disable|enable|remove NAME

A password is typed twice on a terminal (never an argument: others could read it in the process list), or
read from the first line of standard input with ``--password-stdin``. A token is printed once, and only its
digest is kept. Every change is audited as ``local:<OS user>``.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta
from typing import Any

from collector.cli.context import CommandFailed, Context
from collector.cli.table import print_rows
from collector.people import tokens, users
from collector.people.users import Role
from collector.store.database import utcnow

COMMANDS = ("users",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("users", help="users of the web page and the API, and their tokens")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    adding = actions.add_parser("add", help="add a user")
    adding.add_argument("name")
    adding.add_argument("--role", required=True, choices=[role.value for role in Role])
    adding.add_argument("--customer", help="a customer's user: sees only this customer's contracts' devices")
    how = adding.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    how.add_argument("--no-password", action="store_true", help="API tokens only (a script, monitoring)")
    listing = actions.add_parser("list", help="every user, with role, customer and token count")
    listing.add_argument("--json", action="store_true")
    passwd = actions.add_parser("passwd", help="set a user's password (its web sessions end)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true")
    token = actions.add_parser("token", help="make an API token for a user and print it (once)")
    token.add_argument("name")
    token.add_argument("--label", default="api", help="what the token is for (default api)")
    token.add_argument("--days", type=float, help="it expires after this many days (default: never)")
    listing_tokens = actions.add_parser("tokens", help="API tokens (never their secrets)")
    listing_tokens.add_argument("name", nargs="?")
    listing_tokens.add_argument("--json", action="store_true")
    revoke = actions.add_parser("revoke", help="revoke an API token by its id")
    revoke.add_argument("token_id")
    for name, what in (
        ("disable", "refuse a user's logins and tokens (its sessions end)"),
        ("enable", "let a disabled user in again"),
        ("remove", "remove a user with its tokens and sessions"),
    ):
        actions.add_parser(name, help=what).add_argument("name")


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CommandFailed("no password on standard input")
        return line
    if not sys.stdin.isatty():
        raise CommandFailed("type the password on a terminal, or give --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CommandFailed("the two passwords differ")
    return first


def run(args: argparse.Namespace, context: Context) -> int:
    engine = context.engine()
    now = utcnow()
    by = context.actor
    if args.action == "list":
        with engine.connect() as conn:
            rows = users.list_users(conn)
        columns = ["name", "role", "customer", "has_password", "tokens", "disabled", "last_login_at"]
        return print_rows(rows, columns, as_json=args.json, what="users")
    if args.action == "tokens":
        with engine.connect() as conn:
            rows = tokens.list_tokens(conn, args.name)
        columns = ["id", "user", "label", "created_at", "expires_at", "last_used_at"]
        return print_rows(rows, columns, as_json=args.json, what="tokens")
    password = (
        _password(args)
        if args.action == "passwd" or (args.action == "add" and not args.no_password)
        else None
    )
    with engine.begin() as conn:
        if args.action == "add":
            users.add(conn, args.name, args.role, customer=args.customer, password=password, now=now, by=by)
            scoped = f", customer {args.customer}" if args.customer else ""
            print(f"user {args.name} added ({args.role}{scoped})")
        elif args.action == "passwd":
            assert password is not None
            users.set_password(conn, args.name, password, now=now, by=by)
            print(f"password of {args.name} changed; its web sessions ended")
        elif args.action == "token":
            until = now + timedelta(days=args.days) if args.days is not None else None
            token_id, token = tokens.issue(
                conn, args.name, now=now, by=by, label=args.label, expires_at=until
            )
            print(token)
            print(f"token {token_id} of {args.name}: shown once, keep it secret", file=sys.stderr)
        elif args.action == "revoke":
            tokens.revoke(conn, args.token_id, now=now, by=by)
            print(f"token {args.token_id} revoked")
        elif args.action in {"disable", "enable"}:
            users.set_disabled(conn, args.name, args.action == "disable", now=now, by=by)
            print(f"user {args.name} {args.action}d")
        else:
            users.remove(conn, args.name, now=now, by=by)
            print(f"user {args.name} removed")
    return 0
