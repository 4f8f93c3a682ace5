"""Devices: their inventory (from births) and their state (from states), and every change of state kept for
the flapping rule, applied to the batch's ``Roster``. Only what agents said is recorded here; the ticket
decisions are the incident engine's."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from collector.ingest.ordering import order_key
from collector.ingest.roster import DeviceKey, Roster
from protocol import Envelope, parse_ts

log = logging.getLogger(__name__)


def upsert_inventory(
    roster: Roster, key: DeviceKey, *, inventory: dict[str, Any], received_at: datetime
) -> None:
    row = roster.device(key)
    if row is None:
        roster.add_device(key, received_at, **inventory)
        return
    if row["retired_at"] is not None:
        log.info("device %s/%s/%s is back in the agent's inventory", *key)
    roster.set_device(key, updated_at=received_at, retired_at=None, **inventory)


def state(roster: Roster, envelope: Envelope, received_at: datetime) -> None:
    body = envelope.body
    site, agent, device = envelope.site, envelope.agent, body["device"]
    key = (site, agent, device)
    agent_row = roster.agent((site, agent))
    if agent_row is not None and agent_row["boot"] is not None and envelope.boot < agent_row["boot"]:
        log.debug("ignored state of %s/%s/%s from an earlier boot", site, agent, device)
        return  # from a start of the agent before its current one
    row = roster.device(key)
    if row is None:
        # Not in an inventory yet. If the agent's current birth is already applied, it did not list the
        # device: keep the state, but as a retired device, which gets no ticket.
        # A state of a newer boot than the birth applied (its own birth has not arrived yet) says nothing
        # about the inventory: the new birth decides.
        current_birth = (
            agent_row is not None and agent_row["version"] is not None and envelope.boot == agent_row["boot"]
        )
        retired = received_at if current_birth else None
        roster.add_device(key, received_at, retired_at=retired)
        previous_state, previous_down_since = "unknown", None
    else:
        if row["state_boot"] is not None and order_key(envelope) <= (row["state_boot"], row["state_seq"]):
            return  # not newer than the state applied: a late retained copy or a reordered delivery
        previous_state, previous_down_since = row["state"], row["down_since"]
    new_state: str = body["state"]
    since = parse_ts(body["since"])
    down_since = None
    if new_state == "down":
        down_since = previous_down_since if previous_state == "down" else None
        if down_since is None:
            # ts and since are both the agent's clock: their difference is free of clock skew.
            down_since = received_at - max(timedelta(0), envelope.moment - since)
    roster.set_device(
        key,
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
    if new_state != previous_state:
        # When it changed, by the agent's clock but never later than now: a backlog delivered at once
        # after an outage keeps its spacing, so hours of changes do not look like a device flapping.
        roster.transition(key, before=previous_state, after=new_state, at=min(since, received_at))
        log.info(
            "device %s/%s/%s %s -> %s: %s", site, agent, device, previous_state, new_state, body["reason"]
        )
