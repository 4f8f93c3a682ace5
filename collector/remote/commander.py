"""Sending a command to an agent: the one way is ``Commander.request(...)``.

It checks the action and its arguments against the protocol, refuses an agent that is offline (audited),
stores the command (table ``commands``), audits it, signs it with the collector's Ed25519 key and publishes it
on the agent's cmd topic. What follows lives beside it: ``replies`` applies the agent's answers, ``evidence``
asks for service tests and logs when a Critical ticket opens, ``uploads`` takes the log bundles,
``retention`` deletes old bundles, ``history`` reads commands back. See docs/diagnostics.md.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy import insert as sql_insert

from collector import audit
from collector.config import CollectorConfig
from collector.errors import (
    CollectorError,
    ConflictError,
    InvalidError,
    NotFoundError,
    TooManyError,
    UnavailableError,
)
from collector.remote.keys import load_private_key, token_digest
from collector.remote.publisher import Publisher
from collector.store.database import utcnow
from collector.store.schema import agents, contracts, devices
from collector.store.schema import commands as command_table
from protocol import Topics
from protocol.commands import Command, canonical, check_args, encode_signed, new_command

log = logging.getLogger(__name__)

#: Who sends commands by itself: the collector on a sequence gap, and automatic evidence.
AUTOMATIC = ("collector:", "auto-evidence")


class Commander:
    """Sends commands: checks, stores, audits, signs and publishes each; thread-safe (short transactions)."""

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
        self.now = now
        self._key = load_private_key(self.settings.key_file) if self.settings.key_file is not None else None
        self._publisher: Publisher | None = None
        if publish is None and self._key is not None:
            self._publisher = Publisher(config)
            publish = self._publisher.publish
        self._publish = publish

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

    def stop(self) -> None:
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

    def find_agent(self, name: str) -> tuple[str, str]:
        """``(site, agent)`` named ``site/agent``; ``NotFoundError`` if the collector knows no such agent."""
        site, slash, agent = name.partition("/")
        if not slash or not site or not agent or "/" in agent:
            raise InvalidError(f"agent {name!r}: expected SITE/AGENT")
        with self.engine.connect() as conn:
            found = conn.execute(
                select(agents.c.site).where(agents.c.site == site, agents.c.agent == agent)
            ).first()
        if found is None:
            raise NotFoundError(f"no agent {name!r}")
        return site, agent

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
        now = self.now()
        command_id = secrets.token_urlsafe(12)
        full: dict[str, Any] = dict(args or {})
        if device is not None:
            full["device"] = device
        if ticket is not None and action == "collect-logs":
            full["ticket"] = ticket
        token = None
        if action == "collect-logs":
            full.setdefault("personal_data", self._personal_data(site, agent, device))
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
            self._within_limits(conn, site, agent, device, by=requested_by, now=now)
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

    def _personal_data(self, site: str, agent: str, device: str | None) -> str:
        """How the bundle is to treat personal data: as the customer of the device's contract wants."""
        policy = self.settings.personal_data
        if device is None or not policy.customers:
            return policy.default
        query = (
            select(contracts.c.customer)
            .join(devices, devices.c.contract == contracts.c.number)
            .where(devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
        )
        with self.engine.connect() as conn:
            customer = conn.execute(query).scalar()
        return policy.customers.get(customer or "", policy.default)

    def _within_limits(
        self, conn: Connection, site: str, agent: str, device: str | None, *, by: str, now: datetime
    ) -> None:
        """``TooManyError`` when a person's command would pass the limits of ``command_window``: per device,
        and per person. What the collector sends by itself (gap republish, automatic evidence) has limits of
        its own and is not counted against anyone."""
        if by.startswith(AUTOMATIC):
            return
        since = now - timedelta(seconds=self.settings.command_window)
        recent = select(func.count()).select_from(command_table).where(command_table.c.issued_at > since)
        window = f"{self.settings.command_window:g} s"
        if device is not None:
            count = conn.execute(
                recent.where(
                    command_table.c.site == site,
                    command_table.c.agent == agent,
                    command_table.c.device == device,
                )
            ).scalar_one()
            if count >= self.settings.max_commands_per_device:
                raise TooManyError(f"{count} commands to {site}/{agent}/{device} in the last {window}: wait")
        count = conn.execute(recent.where(command_table.c.requested_by == by)).scalar_one()
        if count >= self.settings.max_commands_per_user:
            raise TooManyError(f"{count} commands by {by} in the last {window}: wait")

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
