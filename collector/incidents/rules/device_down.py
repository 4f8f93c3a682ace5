"""The Critical rule: a device ``down`` for at least ``confirm_window`` seconds, behind an online agent, in
that agent's inventory (not retired), not held back (``holds``), gets a Critical ticket whose first response
is due on the terms' clock (24x7 by default), or its ``recovered`` ticket reopened (entry ``down-again``). A
device behind an offline agent gets no ticket: nothing is known about it. A new ticket asks the agent for
evidence once it is committed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, select
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import last_closed, of_devices
from collector.store.schema import ACTIVE_STATUSES, CAUSE_DEVICE_DOWN, agents, devices
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class DeviceDown:
    def apply(self, conn: Connection, context: Context) -> None:
        confirm = timedelta(seconds=context.rules.confirm_window)
        candidates = []
        for device in context.devices:
            if not _watched(device):
                continue  # up, retired or behind an offline agent: nothing to wait for until it changes
            confirmed_at = device.down_since + confirm
            if confirmed_at > context.now:
                context.wake((device.site, device.agent, device.device), confirmed_at)
            else:
                candidates.append(device)
        if not candidates:
            return
        keys = [(device.site, device.agent, device.device) for device in candidates]
        ticketed = {
            (row.site, row.agent, row.device)
            for row in conn.execute(
                select(ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device).where(
                    ticket_table.c.cause == CAUSE_DEVICE_DOWN,
                    ticket_table.c.status.in_(ACTIVE_STATUSES),
                    ticket_table.c.status != "recovered",
                    of_devices(conn, keys),
                )
            )
        }
        closed = last_closed(conn, CAUSE_DEVICE_DOWN, keys)
        for device in sorted(candidates, key=lambda row: row.down_since):
            key = (device.site, device.agent, device.device)
            if key in ticketed:
                continue  # its ticket is open already: nothing to decide
            if key in closed and device.down_since <= closed[key]:
                continue  # an engineer closed the ticket of this very outage: it must end and recur first
            if context.held(conn, device) is None:
                _confirmed(conn, context, device)


def _watched(device: Any) -> bool:
    """Down, in its agent's inventory, behind an online agent: a Critical ticket may be due."""
    return bool(
        device.state == "down"
        and device.down_since is not None
        and device.retired_at is None
        and device.agent_online
    )


def _candidates(context: Context) -> Any:
    """Devices down past the confirm window, in the inventory, behind an online agent (read again)."""
    confirm = timedelta(seconds=context.rules.confirm_window)
    return (
        select(devices)
        .join(agents, and_(agents.c.site == devices.c.site, agents.c.agent == devices.c.agent))
        .where(
            devices.c.state == "down",
            devices.c.down_since.is_not(None),
            devices.c.down_since <= context.now - confirm,
            devices.c.retired_at.is_(None),
            agents.c.online.is_(True),
        )
    )


def _confirmed(conn: Connection, context: Context, device: Row[Any]) -> None:
    """Reopen the device's recovered ticket, or open a Critical one, in a savepoint: another collector that
    opened it first wins (the unique index keeps one), and this evaluation goes on. (On SQLite, where nothing
    was written before it, the savepoint is a transaction of its own, committed when released.)"""
    site, agent, name = device.site, device.agent, device.device
    down_since: datetime = device.down_since
    try:
        with conn.begin_nested():
            # Read again: the device must still be down since the same moment, not retired, behind an online
            # agent (another writer may have changed it since the candidates were read).
            still = conn.execute(
                _candidates(context).where(
                    devices.c.site == site,
                    devices.c.agent == agent,
                    devices.c.device == name,
                    devices.c.down_since == down_since,
                )
            ).first()
            if still is None:
                return
            ticket = tickets.find_open(conn, site, agent, name, CAUSE_DEVICE_DOWN)
            if ticket is not None:
                if ticket.status == "recovered":
                    text = f"Device {name} is down again: {still.state_reason}"
                    tickets.reopen(conn, ticket, context.now, "down-again", text)
                    context.done.reopened.append(ticket.number)
                    log.info(
                        "ticket %s reopened: device %s/%s/%s is down again", ticket.number, site, agent, name
                    )
                return
            number = context.open(
                conn,
                tickets.Subject.of_device(still),
                priority=tickets.PRIORITY_CRITICAL,
                cause=CAUSE_DEVICE_DOWN,
                evidence=still.checks,
                text=_opened_text(still, down_since),
            )
    except IntegrityError:
        return  # another writer opened it first; the unique index kept it to one
    log.info(
        "ticket %s opened: critical, device %s/%s/%s down since %s",
        number,
        site,
        agent,
        name,
        down_since.isoformat(),
    )
    context.ask_for_evidence(number)


def _opened_text(device: Row[Any], down_since: datetime) -> str:
    model = device.model or "device"
    serial = device.serial or "unknown serial"
    room = device.room or "unknown room"
    reason = device.state_reason or "no reason given"
    return (
        f"{model} {device.device} (serial {serial}) in {room} at site {device.site} "
        f"is down since {down_since.isoformat()}: {reason}. Reported by agent {device.agent}."
    )
