"""Turn what agents publish into rows: agents, device inventory and state, events, rejected input.

``Ingest.handle`` never raises for bad input: anything that breaks the wire contract is stored in
``rejected`` with the reason, counted, and ingestion goes on. Writes are idempotent, so the retained
messages a broker delivers again at every subscribe, and QoS 1 duplicates, change nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.metrics import Metrics
from collector.store import CAUSE_DEVICE_DOWN, agents, devices, events, rejected
from protocol import Envelope, ProtocolError, Topics, UnsupportedVersionError, decode, parse_ts
from protocol.bodies import validate_against_topic, validate_body

log = logging.getLogger(__name__)

REASON_MALFORMED = "malformed"
REASON_VERSION = "unsupported-version"
REASON_TOPIC = "topic"


class Ingest:
    """Validates and stores one message at a time; call it from a single thread per store."""

    def __init__(self, engine: Engine, metrics: Metrics, prefix: str) -> None:
        self._engine = engine
        self._metrics = metrics
        self._topics = Topics(prefix)

    def handle(self, topic: str, payload: bytes, received_at: datetime) -> None:
        """Store one message received on ``topic`` at ``received_at``, or keep it as rejected."""
        try:
            parsed = self._topics.parse(topic)
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_TOPIC, str(exc), received_at)
            return
        try:
            envelope = decode(payload)
            validate_body(envelope)
        except UnsupportedVersionError as exc:
            self._reject(topic, payload, REASON_VERSION, str(exc), received_at)
            return
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_MALFORMED, str(exc), received_at)
            return
        try:
            validate_against_topic(envelope, parsed)
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_TOPIC, str(exc), received_at)
            return
        self._apply(envelope, received_at)
        self._metrics.ingested.labels(kind=envelope.kind).inc()

    def _reject(self, topic: str, payload: bytes, reason: str, error: str, received_at: datetime) -> None:
        log.debug("rejected message on %s (%s): %s", topic, reason, error)
        with self._engine.begin() as conn:
            conn.execute(
                insert(rejected).values(
                    topic=topic, payload=payload, reason=reason, error=error, received_at=received_at
                )
            )
        self._metrics.rejected.labels(reason=reason).inc()

    def _apply(self, envelope: Envelope, received_at: datetime) -> None:
        if envelope.kind == "event":
            self._event(envelope, received_at)
            return
        with self._engine.begin() as conn:
            if envelope.kind == "birth":
                self._birth(conn, envelope, received_at)
            elif envelope.kind == "death":
                self._death(conn, envelope, received_at)
            else:
                if envelope.kind == "state":
                    self._state(conn, envelope, received_at)
                conn.execute(
                    update(agents)
                    .where(agents.c.site == envelope.site, agents.c.agent == envelope.agent)
                    .values(last_seen=received_at)
                )

    # -- agents -----------------------------------------------------------------------------------

    def _birth(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        key = (agents.c.site == envelope.site, agents.c.agent == envelope.agent)
        row = conn.execute(select(agents.c.online).where(*key)).first()
        values: dict[str, Any] = {
            "online": True,
            "boot": envelope.boot,
            "version": body["version"],
            "hostname": body.get("hostname") if isinstance(body.get("hostname"), str) else None,
            "will_seq": body["will_seq"],
            "last_seen": received_at,
        }
        if row is None:
            conn.execute(
                insert(agents).values(
                    site=envelope.site, agent=envelope.agent, status_changed_at=received_at, **values
                )
            )
        else:
            if not row.online:
                values["status_changed_at"] = received_at
            conn.execute(update(agents).where(*key).values(**values))
        if row is None or not row.online:
            log.info("agent %s/%s online (version %s)", envelope.site, envelope.agent, body["version"])
        for item in body["devices"]:
            inventory = {name: item.get(name) for name in ("model", "serial", "name", "room", "contract")}
            self._upsert_device(
                conn,
                envelope.site,
                item["id"],
                agent=envelope.agent,
                received_at=received_at,
                inventory=inventory,
            )

    def _death(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        # A will's ts is when it was registered, not when the agent died: the receive time is the moment.
        key = (agents.c.site == envelope.site, agents.c.agent == envelope.agent)
        row = conn.execute(select(agents.c.online).where(*key)).first()
        values = {"online": False, "last_seen": received_at, "status_changed_at": received_at}
        if row is None:
            conn.execute(insert(agents).values(site=envelope.site, agent=envelope.agent, **values))
            return
        if row.online:
            conn.execute(update(agents).where(*key).values(**values))
            log.info("agent %s/%s offline (%s)", envelope.site, envelope.agent, envelope.body.get("reason"))

    # -- devices ----------------------------------------------------------------------------------

    def _upsert_device(
        self,
        conn: Connection,
        site: str,
        device: str,
        *,
        agent: str,
        received_at: datetime,
        inventory: dict[str, Any] | None = None,
    ) -> None:
        key = (devices.c.site == site, devices.c.device == device)
        values = {"agent": agent, **(inventory or {})}
        if conn.execute(select(devices.c.device).where(*key)).first() is None:
            conn.execute(
                insert(devices).values(
                    site=site, device=device, state="unknown", updated_at=received_at, **values
                )
            )
        elif inventory is not None:
            conn.execute(update(devices).where(*key).values(updated_at=received_at, **values))

    def _state(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        site, device, ts = envelope.site, body["device"], envelope.moment
        self._upsert_device(conn, site, device, agent=envelope.agent, received_at=received_at)
        key = (devices.c.site == site, devices.c.device == device)
        query = select(devices.c.state, devices.c.state_ts, devices.c.down_since).where(*key)
        row = conn.execute(query).one()
        if row.state_ts is not None and ts < row.state_ts:
            return  # an older state than the one applied: a late retained copy or a reordered delivery
        new_state: str = body["state"]
        since = parse_ts(body["since"])
        down_since = None
        if new_state == "down":
            down_since = row.down_since if row.state == "down" else None
            if down_since is None:
                down_since = min(since, received_at)
        conn.execute(
            update(devices)
            .where(*key, or_(devices.c.state_ts.is_(None), devices.c.state_ts <= ts))
            .values(
                agent=envelope.agent,
                state=new_state,
                state_since=since,
                state_reason=body["reason"],
                checks=body["checks"],
                state_ts=ts,
                down_since=down_since,
                updated_at=received_at,
            )
        )
        if new_state != row.state:
            log.info("device %s/%s %s -> %s: %s", site, device, row.state, new_state, body["reason"])
        self._follow_ticket(conn, site, device, state=new_state, at=received_at, reason=body["reason"])

    def _follow_ticket(
        self, conn: Connection, site: str, device: str, *, state: str, at: datetime, reason: str
    ) -> None:
        ticket = tickets.find_open(conn, site, device, CAUSE_DEVICE_DOWN)
        if ticket is None:
            return
        if state == "up" and ticket.status == "open":
            tickets.set_status(conn, ticket.id, "recovered", recovered_at=at)
            tickets.add_entry(conn, ticket.id, at, "recovered", f"Device {device} is up again.")
            log.info("ticket %s recovered: device %s/%s is up", ticket.number, site, device)
        elif state == "down" and ticket.status == "recovered":
            tickets.set_status(conn, ticket.id, "open", recovered_at=None)
            tickets.add_entry(conn, ticket.id, at, "down-again", f"Device {device} is down again: {reason}")
            log.info("ticket %s reopened: device %s/%s is down again", ticket.number, site, device)

    # -- events -----------------------------------------------------------------------------------

    def _event(self, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        identity = (
            events.c.site == envelope.site,
            events.c.agent == envelope.agent,
            events.c.boot == envelope.boot,
            events.c.seq == envelope.seq,
        )
        try:
            with self._engine.begin() as conn:
                if conn.execute(select(events.c.id).where(*identity)).first() is not None:
                    self._metrics.duplicates.inc()
                    return
                conn.execute(
                    insert(events).values(
                        site=envelope.site,
                        agent=envelope.agent,
                        boot=envelope.boot,
                        seq=envelope.seq,
                        ts=envelope.moment,
                        received_at=received_at,
                        device=body.get("device"),
                        type=body["type"],
                        body=body,
                    )
                )
        except IntegrityError:
            # Another collector stored the same message between our check and our insert.
            self._metrics.duplicates.inc()
