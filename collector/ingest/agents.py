"""Agents coming and going: a birth (online, its inventory of devices) and a death (the will, a clean stop),
each applied only if newer than the agent's status already stored (``ordering``), to the batch's
``Roster``."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from collector.ingest.devices import upsert_inventory
from collector.ingest.ordering import order_key, status_key
from collector.ingest.roster import Roster
from protocol import Envelope

log = logging.getLogger(__name__)

#: A device's reason while its restarted agent has not checked it yet.
RESTART_REASON = "waiting for the first check of the agent's new start"


def birth(roster: Roster, envelope: Envelope, received_at: datetime) -> None:
    body = envelope.body
    site, agent = envelope.site, envelope.agent
    row = roster.agent((site, agent))
    stored = status_key(row)
    if stored is not None and order_key(envelope) <= stored:
        log.debug("ignored birth %s of %s/%s: not newer than %s", order_key(envelope), site, agent, stored)
        return
    was_online = row is not None and row["online"]
    values: dict[str, Any] = {
        "online": True,
        "boot": envelope.boot,
        "status_seq": envelope.seq,
        "version": body["version"],
        "hostname": body.get("hostname") if isinstance(body.get("hostname"), str) else None,
        "will_seq": body["will_seq"],
        "last_seen": received_at,
    }
    if not was_online:
        values["status_changed_at"] = received_at
    roster.put_agent((site, agent), **values)
    if not was_online:
        log.info("agent %s/%s online (version %s)", site, agent, body["version"])
    if stored is None or envelope.boot > stored[0]:
        _forget_previous_boot(roster, envelope, received_at)
    listed = set()
    for item in body["devices"]:
        listed.add(item["id"])
        inventory = {name: item.get(name) for name in ("model", "serial", "name", "room", "contract")}
        upsert_inventory(roster, (site, agent, item["id"]), inventory=inventory, received_at=received_at)
    _retire_unlisted(roster, site, agent, listed, received_at)


def _forget_previous_boot(roster: Roster, envelope: Envelope, received_at: datetime) -> None:
    """A restarted agent: what its previous start said about its devices is stale.

    Without this a device left ``down`` by an agent that was killed, then repaired while the agent was
    away, would be ticketed at once when the agent comes back. Devices that already have a state from
    the new start (retained messages arrive in any order across topics) keep it.
    """
    site, agent, boot = envelope.site, envelope.agent, envelope.boot
    for name, row in sorted(roster.devices_of((site, agent)).items()):
        if row["state_boot"] is not None and row["state_boot"] >= boot:
            continue
        before = row["state"]
        roster.set_device(
            (site, agent, name),
            state="unknown",
            state_reason=RESTART_REASON,
            state_since=received_at,
            checks=None,
            down_since=None,
            updated_at=received_at,
        )
        if before != "unknown":
            log.info("device %s/%s/%s %s -> unknown: agent restarted", site, agent, name, before)


def _retire_unlisted(roster: Roster, site: str, agent: str, listed: set[str], received_at: datetime) -> None:
    for name, row in sorted(roster.devices_of((site, agent)).items()):
        if name not in listed and row["retired_at"] is None:
            roster.set_device((site, agent, name), retired_at=received_at)
            log.info("device %s/%s/%s retired: no longer in the agent's inventory", site, agent, name)


def death(roster: Roster, envelope: Envelope, received_at: datetime) -> None:
    # A will's ts is when it was registered, not when the agent died: the receive time is the moment.
    site, agent = envelope.site, envelope.agent
    row = roster.agent((site, agent))
    values: dict[str, Any] = {"online": False, "last_seen": received_at, "status_changed_at": received_at}
    if row is None:
        roster.put_agent((site, agent), boot=envelope.boot, status_seq=envelope.seq, **values)
        return
    stored = status_key(row)
    newer = stored is None or order_key(envelope) > stored
    # The will of the current connection was given its seq before the birth, so it is lower than the
    # birth's; the birth's will_seq names it. A will of an earlier connection or boot is stale.
    current_will = row["boot"] == envelope.boot and row["will_seq"] == envelope.seq
    if not (newer or current_will):
        log.debug("ignored stale death %s of %s/%s", order_key(envelope), site, agent)
        return
    if newer:
        values.update(boot=envelope.boot, status_seq=envelope.seq)
    if row["online"]:
        roster.put_agent((site, agent), **values)
        log.info("agent %s/%s offline (%s)", site, agent, envelope.body.get("reason"))
    elif newer:
        roster.put_agent((site, agent), boot=envelope.boot, status_seq=envelope.seq)
