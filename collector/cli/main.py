"""``hezo-collector``: run the collector, migrate its database, and look at what it holds.

hezo-collector [--config FILE] serve
hezo-collector [--config FILE] migrate
hezo-collector [--config FILE] tickets list [--json]
hezo-collector [--config FILE] devices list [--json]
hezo-collector [--config FILE] rejected list [--json]
hezo-collector [--config FILE] tickets show|open|respond|confirm|ship|deliver|return|resolve|close|note ...
hezo-collector [--config FILE] contracts list|coverage|add|remove ...
hezo-collector [--config FILE] maintenance list|add|remove ...
(collector/ticketcli.py has the details)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

import uvicorn
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from collector import tickets
from collector.api.app import create_app
from collector.cli import diagnostics as cli_diag
from collector.cli import tickets as ticketcli
from collector.cli.table import print_rows
from collector.config import CollectorConfig, load_config
from collector.service import CollectorService
from collector.store import queries
from collector.store.database import make_engine, migrate
from common.configfile import ConfigError

log = logging.getLogger("collector")

EXIT_CONFIG = 2
EXIT_STORE = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hezo-collector", description="The hezo central service.")
    parser.add_argument("--config", metavar="FILE", help="YAML configuration (default: built-in defaults)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="ingest, open tickets and serve the web page until SIGINT/SIGTERM")
    commands.add_parser("migrate", help="bring the database schema up to date")
    for name, what in (
        ("tickets", "tickets"),
        ("devices", "devices"),
        ("rejected", "rejected messages"),
        ("agents", "agents and the gaps in their messages"),
    ):
        group = commands.add_parser(name, help=f"look at {what}")
        actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = actions.add_parser("list", help=f"list {what}")
        listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
        if name == "tickets":
            ticketcli.add_ticket_actions(actions)
    ticketcli.add_groups(commands)
    cli_diag.add_parsers(commands)  # remote diagnostics: keygen, logs, diag, audit, bundles
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hezo-collector`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command != "serve" and args.log_level != "DEBUG":
        # A listing's output is the listing; Alembic's "Context impl SQLiteImpl" lines are noise there.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"hezo-collector: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command in cli_diag.NAMES:
        try:
            return cli_diag.run(args, config)
        except ConfigError as exc:
            print(f"hezo-collector: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    if args.command == "serve":
        try:
            return _serve(config)
        except ConfigError as exc:  # e.g. diagnostics.key_file readable by others
            print(f"hezo-collector: {exc}", file=sys.stderr)
            return EXIT_CONFIG
    shown = shown_url(config.store.url)
    try:
        engine = make_engine(config.store.url)
    except STORE_ERRORS as exc:
        return _cannot_open(shown, exc)
    try:
        try:
            migrate(engine)
        except STORE_ERRORS as exc:
            return _cannot_open(shown, exc)
        if args.command == "migrate":
            print(f"hezo-collector: database {shown} is up to date")
            return 0
        if ticketcli.handles(args):
            return ticketcli.run(engine, config, args)
        return _list(engine, args.command, as_json=args.json)
    finally:
        engine.dispose()


#: What opening a store can raise: the database refuses or is unreachable, a file cannot be created,
#: the driver (psycopg) is not installed.
STORE_ERRORS = (SQLAlchemyError, OSError, ImportError)
#: How long ``serve`` waits for the broker subscription before it opens the web page anyway (seconds).
SUBSCRIBE_WAIT = 10.0


def shown_url(url: str) -> str:
    """The store URL as it may be printed or logged: never with its password."""
    return make_url(url).render_as_string(hide_password=True)


def _cannot_open(shown: str, exc: BaseException) -> int:
    print(f"hezo-collector: cannot open the store {shown}: {_reason(exc)}", file=sys.stderr)
    return EXIT_STORE


def _reason(exc: BaseException) -> str:
    """The driver's own words when there are some (``unable to open database file``), on one line."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    return " ".join(str(cause).split()) or type(cause).__name__


class _WebServer(uvicorn.Server):
    """uvicorn, minus re-raising SIGINT/SIGTERM after its shutdown: the collector still has to stop its
    threads, and a stop on request is a success (exit 0), not death by signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _wait_subscribed(service: CollectorService, config: CollectorConfig) -> bool:
    """Wait until messages can arrive, so whoever waits for the page waits for ingest too; without the broker,
    go on after ``SUBSCRIBE_WAIT`` (the health check then says what is wrong). False if SIGINT or SIGTERM came
    meanwhile: the caller stops as it would have with the page up."""
    asked = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: asked.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        deadline = time.monotonic() + SUBSCRIBE_WAIT
        while not service.subscriber.wait_subscribed(0.1):
            if asked.is_set():
                return False
            if time.monotonic() > deadline:
                log.warning(
                    "not subscribed at %s:%s after %.0f s; serving the page meanwhile",
                    config.mqtt.host,
                    config.mqtt.port,
                    SUBSCRIBE_WAIT,
                )
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return not asked.is_set()


def _serve(config: CollectorConfig) -> int:
    try:
        service = CollectorService(config)
        service.start()
    except STORE_ERRORS as exc:
        return _cannot_open(shown_url(config.store.url), exc)
    try:
        if not _wait_subscribed(service, config):
            log.info("asked to stop before serving the page")
            return 0
        app = create_app(
            service.engine,
            service.metrics.registry,
            health=service.health,
            sla=service.sla,
            rules=config.incidents,
            diagnostics=service.commander,
        )
        server = _WebServer(
            uvicorn.Config(app, host=config.web.host, port=config.web.port, log_config=None, access_log=False)
        )
        print(f"hezo-collector: web page at http://{config.web.host}:{config.web.port}/", flush=True)
        # SIGINT and SIGTERM make run() return once the web server has shut down.
        server.run()
    finally:
        service.stop()
    log.info("hezo-collector stopped")
    return 0


_LISTS: dict[str, tuple[Callable[[Connection], list[dict[str, Any]]], list[str]]] = {
    "tickets": (
        tickets.list_tickets,
        [
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
        ],
    ),
    "devices": (
        queries.list_devices,
        ["site", "agent", "device", "model", "serial", "room", "contract", "state", "state_since"],
    ),
    "rejected": (queries.list_rejected, ["received_at", "reason", "topic", "error"]),
    "agents": (
        queries.list_agents,
        ["site", "agent", "online", "boot", "version", "last_seen", "seq_gaps", "seq_missing"],
    ),
}


def _list(engine: Engine, what: str, *, as_json: bool) -> int:
    fetch, columns = _LISTS[what]
    with engine.connect() as conn:
        rows = fetch(conn)
    return print_rows(rows, columns, as_json=as_json, what=what)
