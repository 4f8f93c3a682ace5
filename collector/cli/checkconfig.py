"""``hezo-collector check-config [--config FILE]``: load and validate the configuration as ``serve`` would,
without opening the store or the broker; print what it sets up, or exit 2 with the file, the key and what was
expected (``collector.yaml: incidents.confirm_window: Input should be greater than 0``)."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.context import Context, shown_url

COMMANDS = ("check-config",)


def add_parsers(commands: Any) -> None:
    check = commands.add_parser(
        "check-config",
        help="validate the configuration file and say what it sets up; exit 2 if it cannot be used",
    )
    # Also accepted after the command; the global --config works as everywhere.
    check.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="the file to check")


def run(args: argparse.Namespace, context: Context) -> int:
    from collector.api.hosts import exposure_warning

    source = context.require_source()
    config = context.config
    sla = context.sla  # the site calendars: a time zone or holiday country that does not exist fails here
    sinks = ", ".join(sorted(config.notify.sinks)) if config.notify.sinks else "none"
    print(f"{source}: OK")
    print(f"  store   {shown_url(config.store.url)}")
    print(f"  broker  {config.mqtt.host}:{config.mqtt.port} (tls {'on' if config.mqtt.tls else 'off'})")
    print(f"  web     {config.web.host}:{config.web.port}")
    zones = sorted(
        {str(sla.calendars[name].timezone) for name in config.sites} | {config.default_site.timezone}
    )
    print(f"  sites   {len(config.sites)} ({', '.join(zones)}); contracts {len(config.contracts)}")
    print(f"  sinks   {sinks}")
    warning = exposure_warning(config.web)
    if warning is not None:
        print(f"  warning {warning}")
    return 0
