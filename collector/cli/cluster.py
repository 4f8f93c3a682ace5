"""``hezo-collector cluster leases [--json]``: which collector holds which partition of the sites now, and
the collectors alive; ``hezo-collector cluster nats-mappings [--partitions N]``: the ``mappings`` block each
NATS node's config needs for this collector's prefix and partitions (docs/cluster.md)."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.context import Context
from collector.cli.table import print_rows
from collector.cluster.leases import standing
from collector.cluster.natsmap import render_mappings
from collector.cluster.partitions import MAX_PARTITIONS
from collector.errors import InvalidError

COMMANDS = ("cluster",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("cluster", help="several collectors on one store (docs/cluster.md)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    leases = actions.add_parser("leases", help="who holds which partition now, and the collectors alive")
    leases.add_argument("--json", action="store_true")
    mappings = actions.add_parser("nats-mappings", help="the mappings block of the NATS nodes' config")
    mappings.add_argument("--partitions", type=int, help="default: cluster.partitions")


def run(args: argparse.Namespace, context: Context) -> int:
    if args.action == "nats-mappings":
        partitions = args.partitions if args.partitions is not None else context.config.cluster.partitions
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidError(f"--partitions must be from 1 to {MAX_PARTITIONS}, not {partitions}")
        print(render_mappings(context.config.mqtt.prefix, partitions), end="")
        return 0
    rows = standing(context.engine())
    return print_rows(rows, ["name", "holder", "generation", "expires_at"], as_json=args.json, what="leases")
