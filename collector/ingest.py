"""Turn what agents publish into rows: agents, device inventory and state, events, rejected input.

``Ingest.handle`` never raises for bad input: anything that breaks the wire contract is stored in
``rejected`` with the reason, counted, and ingestion goes on. Messages of one agent are ordered by
``(boot, seq)``, so the retained messages a broker delivers again at every subscribe, QoS 1 duplicates and
late deliveries change nothing. Ingest records state only: ticket decisions are the incident engine's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from collector.incidents import record_transition
from collector.metrics import Metrics
from collector.store import agents, devices, events, rejected
from protocol import Envelope, ProtocolError, Topics, UnsupportedVersionError, decode, parse_ts
from protocol.bodies import validate_against_topic, validate_body

log = logging.getLogger(__name__)

REASON_MALFORMED = "malformed"
REASON_VERSION = "unsupported-version"
REASON_TOPIC = "topic"
REASON_STORE = "store-error"

#: A device's reason while its restarted agent has not checked it yet.
RESTART_REASON = "waiting for the first check of the agent's new start"


def order_key(envelope: Envelope) -> tuple[str, int]:
    """Where a message stands among its agent's messages: ``(boot, seq)``."""
    return (envelope.boot, envelope.seq)


def _status_key(row: Row[Any, Any, Any] | Row[Any, Any, Any, Any] | None) -> tuple[str, int] | None:
    if row is None or row.boot is None or row.status_seq is None:
        return None
    return (row.boot, row.status_seq)


class Ingest:
    """Validates and stores one message at a time; call it from a single thread per store."""

    def __init__(self, engine: Engine, metrics: Metrics, prefix: str) -> None:
        self._engine = engine
        self._metrics = metrics
        self._topics = Topics(prefix)
        #: Where replies to commands go (collector/commands.py); they are not stored otherwise.
        self.on_reply: Callable[[Envelope, datetime], None] | None = None

    def handle(self, topic: str, payload: bytes, received_at: datetime, *, retained: bool = False) -> None:
        """Store one message received on ``topic`` at ``received_at``, or keep it as rejected.

        ``retained``: the broker delivered a retained copy (at a subscribe), which it does again at every
        new subscription: one already kept in ``rejected`` (same topic and payload) is not kept twice.
        """
        try:
            parsed = self._topics.parse(topic)
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_TOPIC, str(exc), received_at, retained=retained)
            return
        try:
            envelope = decode(payload)
            validate_body(envelope)
        except UnsupportedVersionError as exc:
            self._reject(topic, payload, REASON_VERSION, str(exc), received_at, retained=retained)
            return
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_MALFORMED, str(exc), received_at, retained=retained)
            return
        try:
            validate_against_topic(envelope, parsed)
        except ProtocolError as exc:
            self._reject(topic, payload, REASON_TOPIC, str(exc), received_at, retained=retained)
            return
        self._apply(envelope, received_at)
        self._metrics.ingested.labels(kind=envelope.kind).inc()

    def keep_unstorable(self, topic: str, payload: bytes, error: str, received_at: datetime) -> None:
        """Keep a message that could not be stored after retrying as rejected, reason ``store-error``."""
        self._reject(topic, payload, REASON_STORE, error, received_at)

    def _reject(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        error: str,
        received_at: datetime,
        *,
        retained: bool = False,
    ) -> None:
        log.debug("rejected message on %s (%s): %s", topic, reason, error)
        with self._engine.begin() as conn:
            if retained:
                kept = select(rejected.c.id).where(rejected.c.topic == topic, rejected.c.payload == payload)
                if conn.execute(kept.limit(1)).first() is not None:
                    log.debug("retained message on %s already kept as rejected", topic)
                    return
            conn.execute(
                insert(rejected).values(
                    topic=topic, payload=payload, reason=reason, error=error, received_at=received_at
                )
            )
        self._metrics.rejected.labels(reason=reason).inc()

    def _apply(self, envelope: Envelope, received_at: datetime) -> None:
        if envelope.kind == "reply" and self.on_reply is not None:
            self.on_reply(envelope, received_at)
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
    #
    # The order of two messages of one agent is (boot, seq): boot ids sort as strings in start order and
    # seq strictly increases within a boot (docs/protocol.md). The agent's clock orders nothing. Keys are
    # compared here in Python, not in SQL, so a database collation cannot change the order.

    def _birth(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        site, agent = envelope.site, envelope.agent
        key = (agents.c.site == site, agents.c.agent == agent)
        row = conn.execute(select(agents.c.online, agents.c.boot, agents.c.status_seq).where(*key)).first()
        stored = _status_key(row)
        if stored is not None and order_key(envelope) <= stored:
            log.debug(
                "ignored birth %s of %s/%s: not newer than %s", order_key(envelope), site, agent, stored
            )
            return
        values: dict[str, Any] = {
            "online": True,
            "boot": envelope.boot,
            "status_seq": envelope.seq,
            "version": body["version"],
            "hostname": body.get("hostname") if isinstance(body.get("hostname"), str) else None,
            "will_seq": body["will_seq"],
            "last_seen": received_at,
        }
        if row is None:
            conn.execute(
                insert(agents).values(site=site, agent=agent, status_changed_at=received_at, **values)
            )
        else:
            if not row.online:
                values["status_changed_at"] = received_at
            conn.execute(update(agents).where(*key).values(**values))
        if row is None or not row.online:
            log.info("agent %s/%s online (version %s)", site, agent, body["version"])
        if stored is None or envelope.boot > stored[0]:
            self._forget_previous_boot(conn, envelope, received_at)
        listed = set()
        for item in body["devices"]:
            listed.add(item["id"])
            inventory = {name: item.get(name) for name in ("model", "serial", "name", "room", "contract")}
            self._upsert_inventory(
                conn, site, agent, item["id"], inventory=inventory, received_at=received_at
            )
        self._retire_unlisted(conn, site, agent, listed, received_at)

    def _forget_previous_boot(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        """A restarted agent: what its previous start said about its devices is stale.

        Without this a device left ``down`` by an agent that was killed, then repaired while the agent was
        away, would be ticketed at once when the agent comes back. Devices that already have a state from
        the new start (retained messages arrive in any order across topics) keep it.
        """
        site, agent, boot = envelope.site, envelope.agent, envelope.boot
        where = (devices.c.site == site, devices.c.agent == agent)
        rows = conn.execute(
            select(devices.c.device, devices.c.state, devices.c.state_boot).where(*where)
        ).all()
        for row in rows:
            if row.state_boot is not None and row.state_boot >= boot:
                continue
            conn.execute(
                update(devices)
                .where(*where, devices.c.device == row.device)
                .values(
                    state="unknown",
                    state_reason=RESTART_REASON,
                    state_since=received_at,
                    checks=None,
                    down_since=None,
                    updated_at=received_at,
                )
            )
            if row.state != "unknown":
                log.info("device %s/%s/%s %s -> unknown: agent restarted", site, agent, row.device, row.state)

    def _retire_unlisted(
        self, conn: Connection, site: str, agent: str, listed: set[str], received_at: datetime
    ) -> None:
        where = (devices.c.site == site, devices.c.agent == agent, devices.c.retired_at.is_(None))
        for name in conn.execute(select(devices.c.device).where(*where)).scalars().all():
            if name not in listed:
                conn.execute(
                    update(devices).where(*where, devices.c.device == name).values(retired_at=received_at)
                )
                log.info("device %s/%s/%s retired: no longer in the agent's inventory", site, agent, name)

    def _death(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        # A will's ts is when it was registered, not when the agent died: the receive time is the moment.
        site, agent = envelope.site, envelope.agent
        key = (agents.c.site == site, agents.c.agent == agent)
        row = conn.execute(
            select(agents.c.online, agents.c.boot, agents.c.status_seq, agents.c.will_seq).where(*key)
        ).first()
        values: dict[str, Any] = {"online": False, "last_seen": received_at, "status_changed_at": received_at}
        if row is None:
            values.update(boot=envelope.boot, status_seq=envelope.seq)
            conn.execute(insert(agents).values(site=site, agent=agent, **values))
            return
        stored = _status_key(row)
        newer = stored is None or order_key(envelope) > stored
        # The will of the current connection was given its seq before the birth, so it is lower than the
        # birth's; the birth's will_seq names it. A will of an earlier connection or boot is stale.
        current_will = row.boot == envelope.boot and row.will_seq == envelope.seq
        if not (newer or current_will):
            log.debug("ignored stale death %s of %s/%s", order_key(envelope), site, agent)
            return
        if newer:
            values.update(boot=envelope.boot, status_seq=envelope.seq)
        if row.online:
            conn.execute(update(agents).where(*key).values(**values))
            log.info("agent %s/%s offline (%s)", site, agent, envelope.body.get("reason"))
        elif newer:
            conn.execute(update(agents).where(*key).values(boot=envelope.boot, status_seq=envelope.seq))

    # -- devices ----------------------------------------------------------------------------------

    def _upsert_inventory(
        self,
        conn: Connection,
        site: str,
        agent: str,
        device: str,
        *,
        inventory: dict[str, Any],
        received_at: datetime,
    ) -> None:
        key = (devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
        row = conn.execute(select(devices.c.retired_at).where(*key)).first()
        if row is None:
            _insert_device(conn, site, agent, device, received_at, **inventory)
            return
        if row.retired_at is not None:
            log.info("device %s/%s/%s is back in the agent's inventory", site, agent, device)
        conn.execute(update(devices).where(*key).values(updated_at=received_at, retired_at=None, **inventory))

    def _state(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        site, agent, device = envelope.site, envelope.agent, body["device"]
        key = (devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
        agent_row = conn.execute(
            select(agents.c.boot, agents.c.version).where(agents.c.site == site, agents.c.agent == agent)
        ).first()
        if agent_row is not None and agent_row.boot is not None and envelope.boot < agent_row.boot:
            log.debug("ignored state of %s/%s/%s from an earlier boot", site, agent, device)
            return  # from a start of the agent before its current one
        query = select(devices.c.state, devices.c.state_boot, devices.c.state_seq, devices.c.down_since)
        row = conn.execute(query.where(*key)).first()
        if row is None:
            # Not in an inventory yet. If the agent's current birth is already applied, it did not list the
            # device: keep the state, but as a retired device, which gets no ticket.
            # A state of a newer boot than the birth applied (its own birth has not arrived yet) says nothing
            # about the inventory: the new birth decides.
            current_birth = (
                agent_row is not None and agent_row.version is not None and envelope.boot == agent_row.boot
            )
            retired = received_at if current_birth else None
            _insert_device(conn, site, agent, device, received_at, retired_at=retired)
            previous_state, previous_down_since = "unknown", None
        else:
            if row.state_boot is not None and order_key(envelope) <= (row.state_boot, row.state_seq):
                return  # not newer than the state applied: a late retained copy or a reordered delivery
            previous_state, previous_down_since = row.state, row.down_since
        new_state: str = body["state"]
        since = parse_ts(body["since"])
        down_since = None
        if new_state == "down":
            down_since = previous_down_since if previous_state == "down" else None
            if down_since is None:
                # ts and since are both the agent's clock: their difference is free of clock skew.
                down_since = received_at - max(timedelta(0), envelope.moment - since)
        conn.execute(
            update(devices)
            .where(*key)
            .values(
                state=new_state,
                state_since=since,
                state_reason=body["reason"],
                checks=body["checks"],
                state_ts=envelope.moment,
                state_boot=envelope.boot,
                state_seq=envelope.seq,
                down_since=down_since,
                updated_at=received_at,
            )
        )
        if new_state != previous_state:
            record_transition(
                conn, site, agent, device, before=previous_state, after=new_state, at=received_at
            )
            log.info(
                "device %s/%s/%s %s -> %s: %s", site, agent, device, previous_state, new_state, body["reason"]
            )

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


def _insert_device(
    conn: Connection, site: str, agent: str, device: str, received_at: datetime, **values: Any
) -> None:
    """A device row seen for the first time; its state is unknown until one is applied."""
    conn.execute(
        insert(devices).values(
            site=site, agent=agent, device=device, state="unknown", updated_at=received_at, **values
        )
    )
