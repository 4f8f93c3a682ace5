"""``hezo-collector``: run the collector, migrate its store, look at what it holds, move tickets along.

Each command group is a module of this package with ``COMMANDS`` (the names it answers to), ``add_parsers``
and ``run``; ``GROUPS`` lists them, so a new group is one module and one line. Errors become exit statuses
here and nowhere else: 2 a configuration or a command line that cannot be used, 1 a store that cannot be
opened or a command that failed, 3 a request the collector refuses (a step the ticket's status does not
allow, an unknown ticket, bad input), each with one line on stderr saying why.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from collector.cli import (
    agents,
    audit,
    broker,
    bundles,
    checkconfig,
    cluster,
    contracts,
    keys,
    listing,
    maintenance,
    outbox,
    remote,
    retention,
    serve,
    tickets,
    users,
)
from collector.cli.context import CONFIG_ENV, CommandFailed, Context
from collector.config import load_config
from collector.errors import CollectorError
from common.configfile import ConfigError
from common.logs import LOG_FORMATS, configure_logging

log = logging.getLogger("collector")

GROUPS: tuple[ModuleType, ...] = (
    serve,  # serve, migrate
    listing,  # devices, rejected
    agents,
    tickets,
    contracts,
    maintenance,
    outbox,
    keys,  # keygen
    remote,  # logs pull, diag run
    audit,
    bundles,
    broker,  # broker init, sync
    users,  # the people of the web page and the API, their tokens
    checkconfig,  # check-config
    retention,  # retention run, status
    cluster,  # cluster leases, nats-mappings
)

EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_REFUSED = 3


def parser() -> argparse.ArgumentParser:
    found = argparse.ArgumentParser(prog="hezo-collector", description="The hezo central service.")
    found.add_argument(
        "--config",
        metavar="FILE",
        help=f"YAML configuration (default: ${CONFIG_ENV}); every command that uses the store needs one",
    )
    found.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    found.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        help="text or json lines (default: the config's log_format, text)",
    )
    commands = found.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.add_parsers(commands)
    return found


def exit_code(exc: BaseException) -> int | None:
    """The exit status of an error a command raised; None for one that is a bug (let it show its trace)."""
    if isinstance(exc, ConfigError):
        return EXIT_CONFIG
    if isinstance(exc, CommandFailed):
        return EXIT_FAILED
    if isinstance(exc, CollectorError):
        return EXIT_REFUSED
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hezo-collector`` console script; returns the exit status."""
    args = parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format or "text")
    if args.command != "serve" and args.log_level != "DEBUG":
        # A listing's output is the listing; Alembic's "Context impl SQLiteImpl" lines are noise there.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    group = next(group for group in GROUPS if args.command in group.COMMANDS)
    context: Context | None = None
    try:
        source = args.config or os.environ.get(CONFIG_ENV) or None
        config = load_config(source)
        if args.log_format is None and config.log_format != "text":
            configure_logging(args.log_level, config.log_format)
        context = Context(config, source, args.command)
        status: int = group.run(args, context)
    except (ConfigError, CommandFailed, CollectorError) as exc:
        print(f"hezo-collector: {exc}", file=sys.stderr)
        code = exit_code(exc)
        assert code is not None
        return code
    finally:
        if context is not None:
            context.close()
    return status
