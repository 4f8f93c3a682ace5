"""``hezo-collector bundles cleanup``: delete the log bundles past their retention now."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.context import Context
from collector.remote.retention import Retention

COMMANDS = ("bundles",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("bundles", help="stored log bundles")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("cleanup", help="delete bundles past their retention")


def run(args: argparse.Namespace, context: Context) -> int:
    count = Retention(context.engine(), context.config.diagnostics).cleanup()
    print(f"deleted {count} bundle(s) past retention")
    return 0
