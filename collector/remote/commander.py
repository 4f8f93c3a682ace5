"""The collector's side of the command channel: keys, signed commands, replies, and automatic evidence.

``Commander.request(...)`` is the one way to send a command: it stores it (table ``commands``), audits it,
signs it with the collector's Ed25519 key and publishes it on the agent's cmd topic. Replies arrive through
ingest (``handle_reply``), update the command and are audited. ``on_ticket_opened`` is the incident engine's
hook: for a Critical ticket with its agent online it requests service tests and a log bundle, whose results
are attached to the ticket as they arrive. See docs/diagnostics.md.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy import insert as sql_insert

from collector import audit, tickets
from collector.config import CollectorConfig
from collector.errors import CollectorError, ConflictError, InvalidError, NotFoundError, UnavailableError
from collector.store.database import utcnow
from collector.store.schema import agents, bundles, devices
from collector.store.schema import commands as command_table
from collector.store.schema import tickets as ticket_table
from common.configfile import ConfigError
from common.mqttclient import Client
from protocol import Envelope, Topics
from protocol.commands import FINAL_STATUSES, Command, canonical, check_args, encode_signed, new_command

log = logging.getLogger(__name__)

DEFAULT_REPEAT = 5


# -- keys -----------------------------------------------------------------------------------------


def keygen(path: Path) -> Path:
    """Write a new Ed25519 private key to ``path`` (mode 0600) and its public key to ``path.pub``."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        raise FileExistsError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_bytes(public)
    return public_path


def load_private_key(path: Path) -> Any:
    """The collector's signing key; ``ConfigError`` if missing, readable by others, or not Ed25519."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    where = f"diagnostics.key_file: {path}"
    try:
        info = path.stat()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise ConfigError(
            f"{where}: mode {stat.S_IMODE(info.st_mode):04o} lets others read the signing key; chmod 600 it"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: expected an Ed25519 key (hezo-collector keygen makes one)")
    return key


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- publishing ------------------------------------------------------------------------------------


class Publisher:
    """A small MQTT connection of its own for commands (clean session, QoS 1), apart from the ingest one."""

    def __init__(self, config: CollectorConfig) -> None:
        cfg = config.mqtt
        self._cfg = cfg
        self._client = Client(f"{cfg.client_id}-cmd", clean_session=True)
        self._client.login(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        self._client.use_tls(cfg.tls)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = lambda client, *_: client.connected()

    def start(self) -> None:
        self._client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1, retain=False)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


# -- the commander --------------------------------------------------------------------------------


class Commander:
    """Sends commands, follows their replies, stores their results; thread-safe (short transactions)."""

    def __init__(
        self,
        engine: Engine,
        config: CollectorConfig,
        *,
        publish: Callable[[str, bytes], None] | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.config = config
        self.settings = config.diagnostics
        self.topics = Topics(config.mqtt.prefix)
        self._now = now
        self._key = load_private_key(self.settings.key_file) if self.settings.key_file is not None else None
        self._publisher: Publisher | None = None
        if publish is None and self._key is not None:
            self._publisher = Publisher(config)
            publish = self._publisher.publish
        self._publish = publish
        self._stopping = threading.Event()
        self._cleaner = threading.Thread(target=self._clean_loop, name="hezo-collector-cleanup", daemon=True)

    @property
    def enabled(self) -> bool:
        return self._key is not None

    @property
    def upload_base(self) -> str:
        web = self.config.web
        return (self.settings.public_url or f"http://{web.host}:{web.port}").rstrip("/")

    def start(self) -> None:
        if self._publisher is not None:
            self._publisher.start()
        self._cleaner.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._cleaner.is_alive():
            self._cleaner.join()
        if self._publisher is not None:
            self._publisher.stop()

    # -- requests --------------------------------------------------------------------------------

    def find_device(self, name: str) -> tuple[str, str, str]:
        """``(site, agent, device)`` named ``device`` or ``site/agent/device``; ``NotFoundError`` if none."""
        parts = name.split("/")
        query = select(devices.c.site, devices.c.agent, devices.c.device).where(
            devices.c.retired_at.is_(None)
        )
        if len(parts) == 3:
            query = query.where(
                devices.c.site == parts[0], devices.c.agent == parts[1], devices.c.device == parts[2]
            )
        elif len(parts) == 1:
            query = query.where(devices.c.device == name)
        else:
            raise InvalidError(f"device {name!r}: expected DEVICE or SITE/AGENT/DEVICE")
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        if not rows:
            raise NotFoundError(f"no device {name!r}")
        if len(rows) > 1:
            names = ", ".join(f"{r.site}/{r.agent}/{r.device}" for r in rows)
            raise InvalidError(f"device {name!r} is ambiguous: {names}; name it SITE/AGENT/DEVICE")
        row = rows[0]
        return row.site, row.agent, row.device

    def request(
        self,
        site: str,
        agent: str,
        action: str,
        *,
        device: str | None = None,
        args: dict[str, Any] | None = None,
        ticket: str | None = None,
        requested_by: str = "api",
    ) -> str:
        """Send ``action`` to ``site/agent``; return the command id. ``republish-state`` is what the sequence
        gap detection calls: ``commander.request(site, agent, "republish-state", requested_by="gap")``."""
        if self._key is None or self._publish is None:
            raise UnavailableError("remote diagnostics are off: set diagnostics.key_file")
        now = self._now()
        command_id = secrets.token_urlsafe(12)
        full: dict[str, Any] = dict(args or {})
        if device is not None:
            full["device"] = device
        if ticket is not None and action == "collect-logs":
            full["ticket"] = ticket
        token = None
        if action == "collect-logs":
            token = secrets.token_urlsafe(32)
            full["upload_url"] = f"{self.upload_base}/api/uploads/{command_id}"
            full["upload_token"] = token
        try:
            check_args(action, full)
            command = new_command(
                command_id, site, agent, action, full, now, now + timedelta(seconds=self.settings.command_ttl)
            )
        except ValueError as exc:  # ProtocolError is a ValueError
            raise InvalidError(str(exc)) from None
        shown = {k: v for k, v in full.items() if k != "upload_token"}
        with self.engine.begin() as conn:
            online = conn.execute(
                select(agents.c.online).where(agents.c.site == site, agents.c.agent == agent)
            ).scalar()
            if not online:  # audited, and committed: the refusal to send is on record too
                audit.record(
                    conn,
                    now,
                    "not-sent",
                    "agent offline",
                    actor=requested_by,
                    site=site,
                    agent=agent,
                    command_id=command_id,
                    action=action,
                )
        if not online:
            raise ConflictError(f"agent {site}/{agent} is offline")
        with self.engine.begin() as conn:
            conn.execute(
                sql_insert(command_table).values(
                    id=command_id,
                    site=site,
                    agent=agent,
                    device=device,
                    action=action,
                    args=shown,
                    ticket=ticket,
                    requested_by=requested_by,
                    status="sent",
                    progress=0.0,
                    issued_at=now,
                    expires_at=command.expires,
                    updated_at=now,
                    upload_token_sha256=token_digest(token) if token else None,
                )
            )
            audit.record(
                conn,
                now,
                "issued",
                f"{action} {shown}",
                actor=requested_by,
                site=site,
                agent=agent,
                command_id=command_id,
                action=action,
            )
        self._publish(self.topics.cmd(site, agent), self.sign(command))
        log.info("command %s sent to %s/%s: %s %s", command_id, site, agent, action, device or "")
        return command_id

    def request_republish(self, site: str, agent: str, reason: str = "sequence gap") -> str | None:
        """Ask an agent to publish its device states again (the seam for sequence-gap detection).

        Returns the command id, or None when it cannot be sent (off, or the agent offline): a gap is then
        healed by the agent's next birth, which republishes anyway.
        """
        try:
            return self.request(site, agent, "republish-state", requested_by=f"collector:{reason}"[:64])
        except CollectorError as exc:
            log.info("no republish-state for %s/%s: %s", site, agent, exc)
            return None

    def sign(self, command: Command) -> bytes:
        assert self._key is not None
        return encode_signed(command, self._key.sign(canonical(command)))

    # -- replies ---------------------------------------------------------------------------------

    def handle_reply(self, envelope: Envelope, received_at: datetime) -> None:
        """Apply one reply (called by ingest on the writer thread)."""
        body = envelope.body
        command_id = str(body.get("command"))
        status = str(body.get("status", "progress"))
        with self.engine.begin() as conn:
            row = conn.execute(select(command_table).where(command_table.c.id == command_id)).first()
            known = row is not None and (row.site, row.agent) == (envelope.site, envelope.agent)
            detail = _describe(body)
            if status != "progress":
                event = status if known else f"{status}-unknown"
                audit.record(
                    conn,
                    received_at,
                    event,
                    detail or status,
                    actor=f"agent:{envelope.agent}",
                    site=envelope.site,
                    agent=envelope.agent,
                    command_id=command_id,
                    action=row.action if row is not None else body.get("action"),
                )
            if not known or row is None or row.status in FINAL_STATUSES:
                return
            if status == "refused" and row.status != "sent":
                # A second delivery of a command the agent already took (QoS 1 resends after a reconnect) is
                # refused as replayed: on record above, but it does not undo the command that is running.
                return
            values: dict[str, Any] = {"status": status, "updated_at": received_at}
            if isinstance(body.get("progress"), int | float):
                values["progress"] = float(body["progress"])
            if detail:
                values["message"] = detail
            if isinstance(body.get("result"), dict):
                values["result"] = body["result"]
            conn.execute(update(command_table).where(command_table.c.id == command_id).values(**values))
            if row.ticket and row.action == "service-tests" and status in FINAL_STATUSES:
                self._attach_tests(conn, row.ticket, command_id, status, body, received_at)

    def _attach_tests(  # noqa: PLR0917
        self, conn: Connection, number: str, command_id: str, status: str, body: dict[str, Any], at: datetime
    ) -> None:
        ticket_id = conn.execute(select(ticket_table.c.id).where(ticket_table.c.number == number)).scalar()
        if ticket_id is None:
            return
        result = body.get("result") or {}
        if status == "done":
            lines = [
                f"{c['driver']} {c['target']}: {c['runs'] - c['failed']}/{c['runs']} answered"
                f" ({c['loss_pct']}% loss); last: {c['last']['detail']}"
                for c in result.get("checks", [])
            ]
            text = f"Service tests ({command_id}): {'pass' if result.get('ok') else 'FAIL'}. " + "; ".join(
                lines
            )
        else:
            text = f"Service tests ({command_id}) {status}: {body.get('reason') or body.get('message')}"
        tickets.add_entry(conn, ticket_id, at, "service-tests", text)

    # -- automatic evidence -------------------------------------------------------------------------

    def on_ticket_opened(self, number: str) -> None:
        """For a new Critical ticket: request service tests and a log bundle if the agent is online."""
        if not self.enabled or not self.settings.auto_evidence:
            return
        with self.engine.connect() as conn:
            ticket = conn.execute(select(ticket_table).where(ticket_table.c.number == number)).first()
        if ticket is None or ticket.priority != tickets.PRIORITY_CRITICAL:
            return
        since = self._now() - timedelta(hours=self.settings.evidence_since_hours)
        from protocol import format_ts

        for action, args in (
            ("service-tests", {"repeat": DEFAULT_REPEAT}),
            ("collect-logs", {"since": format_ts(since)}),
        ):
            try:
                self.request(
                    ticket.site,
                    ticket.agent,
                    action,
                    device=ticket.device,
                    args=args,
                    ticket=number,
                    requested_by="auto-evidence",
                )
            except CollectorError as exc:
                log.info("no automatic %s for ticket %s: %s", action, number, exc)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, command_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(command_table).where(command_table.c.id == command_id)).first()
            if row is None:
                return None
            item = _command_dict(row)
            bundle = conn.execute(select(bundles.c.id).where(bundles.c.command_id == command_id)).scalar()
            item["bundle"] = bundle
            if self._now() > row.expires_at and row.status not in FINAL_STATUSES:
                item["status"] = "expired"
        return item

    def list(self, *, ticket: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        query = select(command_table).order_by(command_table.c.issued_at.desc()).limit(limit)
        if ticket is not None:
            query = query.where(command_table.c.ticket == ticket)
        with self.engine.connect() as conn:
            return [_command_dict(row) for row in conn.execute(query)]

    # -- retention -------------------------------------------------------------------------------

    def cleanup(self) -> int:
        """Delete bundles past their retention and abandoned partial uploads; return how many bundles."""
        now = self._now()
        with self.engine.begin() as conn:
            expired = conn.execute(select(bundles).where(bundles.c.expires_at <= now)).all()
            for row in expired:
                Path(row.path).unlink(missing_ok=True)
                conn.execute(bundles.delete().where(bundles.c.id == row.id))
                audit.record(
                    conn,
                    now,
                    "bundle-deleted",
                    f"retention ended ({row.sha256[:12]})",
                    actor="retention",
                    site=row.site,
                    agent=row.agent,
                    command_id=row.command_id,
                )
        partial = self.settings.bundle_dir / "partial"
        if partial.is_dir():
            for path in partial.iterdir():
                age = now.timestamp() - path.stat().st_mtime
                if age > 2 * self.settings.command_ttl + 86400:
                    path.unlink(missing_ok=True)
        return len(expired)

    def _clean_loop(self) -> None:
        while not self._stopping.wait(600):
            try:
                self.cleanup()
            except Exception:
                log.exception("bundle cleanup failed; trying again later")


def _describe(body: dict[str, Any]) -> str:
    """``reason: message`` of a reply, or whichever of the two it has."""
    parts = [str(body[name]) for name in ("reason", "message") if body.get(name)]
    return ": ".join(parts)


def _command_dict(row: Any) -> dict[str, Any]:
    item = dict(row._mapping)
    for name in ("upload_token_sha256", "upload_length", "upload_sha256"):
        item.pop(name, None)
    return item
