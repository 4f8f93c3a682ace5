"""``hezo-collector cluster leases [--json]``: which collector holds which partition of the sites now, and
the collectors alive; ``hezo-collector cluster nats-mappings [--partitions N]``: the ``mappings`` block each
NATS node's config needs for this collector's prefix and partitions; ``hezo-collector cluster nats-setup``:
the durable consumers made on the NATS cluster before the first agent connects, so that NATS keeps what
agents publish until a collector reads it (docs/cluster.md)."""

from __future__ import annotations

import argparse
import functools
from typing import Any

from collector.cli.context import CommandFailed, Context
from collector.cli.table import print_rows
from collector.cluster.leases import standing
from collector.cluster.natsmap import render_mappings
from collector.cluster.partitions import MAX_PARTITIONS
from collector.errors import InvalidError
from collector.ingest.consumers import PartitionCountError
from collector.ingest.natsconnect import make_consumers, open_mqtt_once
from collector.ingest.session import SessionSettings

COMMANDS = ("cluster",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("cluster", help="several collectors on one store (docs/cluster.md)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    leases = actions.add_parser("leases", help="who holds which partition now, and the collectors alive")
    leases.add_argument("--json", action="store_true")
    mappings = actions.add_parser("nats-mappings", help="the mappings block of the NATS nodes' config")
    mappings.add_argument("--partitions", type=int, help="default: cluster.partitions")
    actions.add_parser(
        "nats-setup", help="make each partition's consumer on the NATS cluster (before the first agent)"
    )


def run(args: argparse.Namespace, context: Context) -> int:
    if args.action == "nats-mappings":
        partitions = args.partitions if args.partitions is not None else context.config.cluster.partitions
        if not 1 <= partitions <= MAX_PARTITIONS:
            raise InvalidError(f"--partitions must be from 1 to {MAX_PARTITIONS}, not {partitions}")
        print(render_mappings(context.config.mqtt.prefix, partitions), end="")
        return 0
    if args.action == "nats-setup":
        return _nats_setup(context)
    rows = standing(context.engine())
    return print_rows(rows, ["name", "holder", "generation", "expires_at"], as_json=args.json, what="leases")


def _nats_setup(context: Context) -> int:
    config = context.config
    if config.cluster.backbone != "jetstream" or config.cluster.nats is None:
        raise InvalidError("nats-setup needs cluster.backbone: jetstream and cluster.nats in the config")
    try:
        made = make_consumers(
            config.cluster.nats,
            config.mqtt.prefix,
            config.cluster.partitions,
            functools.partial(open_mqtt_once, SessionSettings.of(config.mqtt)),
        )
    except PartitionCountError:
        raise  # refused (exit 3): the message says what to do
    except Exception as exc:  # NATS unreachable, a refused login, no stream: said, exit 1
        raise CommandFailed(
            f"could not make the consumers on {', '.join(config.cluster.nats.servers)}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    for name in made:
        print(f"made {name}")
    print(f"every one of the {config.cluster.partitions} partitions has a consumer")
    return 0
