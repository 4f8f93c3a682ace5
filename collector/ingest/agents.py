"""Agents coming and going: a birth (online, its inventory of devices) and a death (the will, a clean stop),
each applied only if newer than the agent's status already stored (``ordering``)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from collector.ingest.devices import upsert_inventory
from collector.ingest.ordering import order_key, status_key
from collector.store.schema import agents, devices
from protocol import Envelope

log = logging.getLogger(__name__)

#: A device's reason while its restarted agent has not checked it yet.
RESTART_REASON = "waiting for the first check of the agent's new start"


def birth(conn: Connection, envelope: Envelope, received_at: datetime) -> None:
    body = envelope.body
    site, agent = envelope.site, envelope.agent
    key = (agents.c.site == site, agents.c.agent == agent)
    row = conn.execute(
        select(agents.c.online, agents.c.boot, agents.c.status_seq).where(*key).with_for_update()
    ).first()
    stored = status_key(row)
    if stored is not None and order_key(envelope) <= stored:
        log.debug("ignored birth %s of %s/%s: not newer than %s", order_key(envelope), site, agent, stored)
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
        conn.execute(insert(agents).values(site=site, agent=agent, status_changed_at=received_at, **values))
    else:
        if not row.online:
            values["status_changed_at"] = received_at
        conn.execute(update(agents).where(*key).values(**values))
    if row is None or not row.online:
        log.info("agent %s/%s online (version %s)", site, agent, body["version"])
    if stored is None or envelope.boot > stored[0]:
        _forget_previous_boot(conn, envelope, received_at)
    listed = set()
    for item in body["devices"]:
        listed.add(item["id"])
        inventory = {name: item.get(name) for name in ("model", "serial", "name", "room", "contract")}
        upsert_inventory(conn, site, agent, item["id"], inventory=inventory, received_at=received_at)
    _retire_unlisted(conn, site, agent, listed, received_at)


def _forget_previous_boot(conn: Connection, envelope: Envelope, received_at: datetime) -> None:
    """A restarted agent: what its previous start said about its devices is stale.

    Without this a device left ``down`` by an agent that was killed, then repaired while the agent was
    away, would be ticketed at once when the agent comes back. Devices that already have a state from
    the new start (retained messages arrive in any order across topics) keep it.
    """
    site, agent, boot = envelope.site, envelope.agent, envelope.boot
    where = (devices.c.site == site, devices.c.agent == agent)
    rows = conn.execute(select(devices.c.device, devices.c.state, devices.c.state_boot).where(*where)).all()
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
    conn: Connection, site: str, agent: str, listed: set[str], received_at: datetime
) -> None:
    where = (devices.c.site == site, devices.c.agent == agent, devices.c.retired_at.is_(None))
    for name in conn.execute(select(devices.c.device).where(*where)).scalars().all():
        if name not in listed:
            conn.execute(
                update(devices).where(*where, devices.c.device == name).values(retired_at=received_at)
            )
            log.info("device %s/%s/%s retired: no longer in the agent's inventory", site, agent, name)


def death(conn: Connection, envelope: Envelope, received_at: datetime) -> None:
    # A will's ts is when it was registered, not when the agent died: the receive time is the moment.
    site, agent = envelope.site, envelope.agent
    key = (agents.c.site == site, agents.c.agent == agent)
    row = conn.execute(
        select(agents.c.online, agents.c.boot, agents.c.status_seq, agents.c.will_seq)
        .where(*key)
        .with_for_update()
    ).first()
    values: dict[str, Any] = {"online": False, "last_seen": received_at, "status_changed_at": received_at}
    if row is None:
        values.update(boot=envelope.boot, status_seq=envelope.seq)
        conn.execute(insert(agents).values(site=site, agent=agent, **values))
        return
    stored = status_key(row)
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
