"""``hezo-collector broker init|sync``: the broker's logins and access rules, made by hezo and kept in step.

hezo-collector broker init --out FILE   # the plugin's first file: the collector's login, all else closed
hezo-collector broker sync              # the broker's rules made again from the store and the wire contract

Both need ``enrolment.broker: dynamic-security`` (docs/security-agents.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from collector.cli.context import CommandFailed, Context
from collector.errors import InvalidError, UnavailableError
from collector.ingest import enrolment
from collector.store.database import utcnow
from protocol import Topics

COMMANDS = ("broker",)


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("broker", help="the broker's logins and access rules (dynamic security)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser("init", help="write the dynamic-security plugin's first file (mode 0600)")
    init.add_argument("--out", type=Path, required=True, help="the file (plugin_opt_config_file)")
    actions.add_parser("sync", help="make the broker's rules and logins match the agents enrolled")


def run(args: argparse.Namespace, context: Context) -> int:
    config = context.config
    if config.enrolment.broker != "dynamic-security":
        raise InvalidError(f"broker {args.action} needs enrolment.broker: dynamic-security")
    # The configuration refuses dynamic-security without the collector's login.
    assert config.mqtt.username is not None
    assert config.mqtt.password is not None
    topics = Topics(config.mqtt.prefix)
    if args.action == "init":
        from collector.broker.acl import plugin_config

        document = plugin_config(topics, config.mqtt.username, config.mqtt.password.get_secret_value())
        try:
            fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:  # an existing file is never overwritten: it holds every agent's login
            raise CommandFailed(f"cannot write {args.out}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=1)
        print(
            f"{args.out} (mode 0600): the collector's login {config.mqtt.username} and its rules, access "
            "closed for everyone else; point the broker's plugin_opt_config_file at it"
        )
        return 0
    from collector.broker.control import BrokerControl
    from collector.broker.dynsec import DynamicSecurity

    with context.engine().connect() as conn:
        enrolled = enrolment.enrolled_agents(conn)
    try:
        with BrokerControl(config.mqtt, config.enrolment.timeout) as control:
            changes, missing = DynamicSecurity(control, topics).sync(enrolled, config.mqtt.username)
    except UnavailableError as exc:
        raise CommandFailed(str(exc)) from None
    for change in changes:
        print(change)
    when = f"{utcnow():%Y-%m-%d %H:%M:%S} UTC"
    print(f"broker in step at {when}: {len(enrolled)} agent(s) enrolled, {len(changes)} change(s)")
    if missing:
        print(f"without a broker login (give one with agents rotate): {', '.join(missing)}")
        return 1
    return 0
