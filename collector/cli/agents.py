"""``hezo-collector agents list|enrol|rotate|revoke|enrolled``: the agents, and which of them are trusted.

hezo-collector agents list [--json]
hezo-collector agents enrol SITE/AGENT [--out FILE|-]   # trusted; with enrolment.broker, its own broker login
hezo-collector agents rotate SITE/AGENT [--out FILE|-]  # a new login; the old one is refused at once
hezo-collector agents revoke SITE/AGENT                 # no longer: the broker throws it out
hezo-collector agents enrolled [--json]

With ``enrolment.broker: dynamic-security`` enrol and rotate write an enrolment document (a secret: mode
0600, or to standard output with ``--out -``) for ``hezo-agent enroll``; the store keeps only the SHA-256 of
the password, and the audit log says who issued which credential when (docs/security-agents.md).
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import sys
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

from collector import audit
from collector.cli.context import CommandFailed, Context
from collector.cli.listing import add_list
from collector.cli.table import print_rows
from collector.config import CollectorConfig
from collector.errors import InvalidError, UnavailableError
from collector.ingest import enrolment
from collector.store import queries
from collector.store.database import utcnow
from protocol import ProtocolError, Topics, format_ts, validate_id
from protocol.enrolment import Enrolment, encode_enrolment

COMMANDS = ("agents",)

COLUMNS = ["site", "agent", "online", "boot", "version", "last_seen", "seq_gaps", "seq_missing"]
ENROLLED = ["site", "agent", "enrolled_at", "enrolled_by", "revoked_at", "credential", "credential_at"]


def add_parsers(commands: Any) -> None:
    group = commands.add_parser("agents", help="agents, the gaps in their messages, and their enrolment")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_list(actions, "agents and the gaps in their messages")
    for name, what in (
        ("enrol", "trust this agent: take its messages, and give it its broker login"),
        ("rotate", "give an enrolled agent a new broker login; the old one is refused at once"),
        ("revoke", "stop trusting it: the broker throws it out, its messages are refused"),
    ):
        action = actions.add_parser(name, help=what)
        action.add_argument("agent", metavar="SITE/AGENT")
        if name != "revoke":
            action.add_argument(
                "--out",
                metavar="FILE",
                help="where the enrolment document goes (mode 0600; '-' for standard output); "
                "default enrolment-SITE-AGENT.json",
            )
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
        for row in rows:
            digest = row.pop("credential_sha256")
            row["credential"] = f"sha256:{digest[:16]}" if digest else None
        return print_rows(rows, ENROLLED, as_json=args.json, what="enrolled agents")
    site, agent = _agent(args.agent)
    by, now = f"local:{getpass.getuser()}", utcnow()
    broker = context.config.enrolment.broker == "dynamic-security"
    if args.action == "rotate" and not broker:
        raise InvalidError(
            "agents rotate needs enrolment.broker: dynamic-security (a broker login to rotate)"
        )
    issued: Issued | None = None
    with ExitStack() as cleanup:
        with engine.begin() as conn:
            if args.action == "enrol":
                enrolment.enrol(conn, site, agent, by=by, at=now)
                what = f"agent {site}/{agent} enrolled"
                audit.record(conn, now, "agent-enrolled", what, actor=by, site=site, agent=agent)
            if args.action in ("enrol", "rotate") and broker:
                issued = login = Issued(context.config, site, agent, by, now)
                cleanup.callback(login.discard)  # until the transaction commits, a written document goes
                login.prepare(args.out)
                _broker(context.config, lambda dynsec: dynsec.put_agent(site, agent, login.password))
                enrolment.set_credential(conn, site, agent, login.fingerprint, by=by, at=now)
                what = f"broker login {site}/{agent} issued, credential sha256:{login.fingerprint[:16]}"
                audit.record(conn, now, "credential-issued", what, actor=by, site=site, agent=agent)
            if args.action == "revoke":
                enrolment.revoke(conn, site, agent, by=by, at=now)
                what = f"agent {site}/{agent} revoked"
                if broker:
                    removed = _broker(context.config, lambda dynsec: dynsec.remove_agent(site, agent))
                    what += "; its broker login removed" if removed else "; it had no broker login"
                audit.record(conn, now, "agent-revoked", what, actor=by, site=site, agent=agent)
        cleanup.pop_all()  # committed: the document stays
    if issued is not None:
        issued.emit()
    _report(args.action, site, agent, issued, broker)
    return 0


class Issued:
    """A new broker login for one agent, and the enrolment document that carries it (written once)."""

    def __init__(self, config: CollectorConfig, site: str, agent: str, by: str, now: datetime) -> None:
        from collector.broker import acl

        username = acl.agent_username(site, agent)
        if username == config.mqtt.username:
            raise InvalidError(f"{site}/{agent}: its broker login would be the collector's own ({username})")
        self.password = secrets.token_urlsafe(32)  # 256 random bits
        self.document = Enrolment(
            site=site,
            agent=agent,
            host=config.enrolment.agent_host or config.mqtt.host,
            port=config.enrolment.agent_port,
            prefix=config.mqtt.prefix,
            client_id=acl.agent_client_id(site, agent),
            username=username,
            password=self.password,
            ca=_broker_ca(config),
            command_key=_command_key(config),
            issued_at=format_ts(now),
            issued_by=by,
        )
        self.fingerprint = self.document.fingerprint
        self.path: Path | None = None
        self._stdout = False

    def prepare(self, out: str | None) -> None:
        """Write the document to its file now (before the broker changes: an unwritable path fails first), or
        keep it for ``emit`` when it goes to standard output (only once everything is done)."""
        self._stdout = out == "-"
        if self._stdout:
            return
        data = encode_enrolment(self.document)
        path = Path(out or f"enrolment-{self.document.site}-{self.document.agent}.json")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise CommandFailed(
                f"cannot write the enrolment document {path}: {exc.strerror or exc}"
            ) from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        self.path = path

    def emit(self) -> None:
        if self._stdout:
            sys.stdout.buffer.write(encode_enrolment(self.document))
            sys.stdout.flush()

    def discard(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


def _broker(config: CollectorConfig, change: Any) -> Any:
    """Run ``change(DynamicSecurity)`` on one control connection; a broker that cannot be reached fails."""
    from collector.broker.control import BrokerControl
    from collector.broker.dynsec import DynamicSecurity

    try:
        with BrokerControl(config.mqtt, config.enrolment.timeout) as control:
            return change(DynamicSecurity(control, Topics(config.mqtt.prefix)))
    except UnavailableError as exc:
        raise CommandFailed(f"{exc}; nothing was changed") from None


def _broker_ca(config: CollectorConfig) -> str | None:
    path = config.enrolment.ca_file or (config.mqtt.tls.ca_file if config.mqtt.tls else None)
    return path.read_text() if path is not None else None


def _command_key(config: CollectorConfig) -> str | None:
    """The collector's command public key, made from its signing key (so it cannot be a stale copy)."""
    if config.diagnostics.key_file is None:
        return None
    from cryptography.hazmat.primitives import serialization

    from collector.remote.keys import load_private_key

    public = load_private_key(config.diagnostics.key_file).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return str(pem.decode())


def _report(action: str, site: str, agent: str, issued: Issued | None, broker: bool) -> None:
    """What was done, on stderr when the document itself went to standard output."""
    out = sys.stdout if issued is None or issued.path is not None else sys.stderr
    done = {"enrol": "enrolled", "rotate": "has a new broker login", "revoke": "revoked"}[action]
    print(f"agent {site}/{agent} {done}", file=out)
    if issued is not None:
        where = f"in {issued.path} (mode 0600)" if issued.path else "on standard output"
        print(
            f"credential sha256:{issued.fingerprint[:16]}; its enrolment document is {where}: a secret, for "
            f"the agent only. On the agent: hezo-agent enroll --config AGENT.yaml FILE",
            file=out,
        )
    elif action == "enrol" and not broker:
        print("no broker login made (enrolment.broker is none): the agent logs in as configured", file=out)


def _agent(text: str) -> tuple[str, str]:
    site, _, agent = text.partition("/")
    try:
        return validate_id("site", site), validate_id("agent", agent)
    except ProtocolError as exc:
        raise InvalidError(f"{text!r}: expected SITE/AGENT ({exc})") from None
