"""The Critical rule: a device ``down`` for at least ``confirm_window`` seconds, behind an online agent, in
that agent's inventory (not retired), not held back (``holds``), gets a Critical ticket whose first response
is due on the terms' clock (24x7 by default), or its ``recovered`` ticket reopened (entry ``down-again``). A
device behind an offline agent gets no ticket: nothing is known about it. While ingest lags behind the agents
the confirmation waits, up to ``LAG_HOLD``. A new ticket asks the agent for evidence once it is committed."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, and_, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import last_closed, of_devices
from collector.store.database import among
from collector.store.schema import ACTIVE_STATUSES, CAUSE_DEVICE_DOWN, agents, devices
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

#: While ingest is behind the agents, a device down past its confirm window waits this much longer at most
#: (looked at again every ``LAG_RECHECK``): a device that went down and came back within the window is seen
#: down past it when the message that says it came back is still queued. Bounded, so that an overloaded
#: collector still opens a dead device's ticket.
LAG_HOLD = timedelta(seconds=60)
LAG_RECHECK = timedelta(seconds=1)


class DeviceDown:
    def apply(self, conn: Connection, context: Context) -> None:
        confirm = timedelta(seconds=context.rules.confirm_window)
        candidates = []
        for device in context.devices:
            if not _watched(device):
                continue  # up, retired or behind an offline agent: nothing to wait for until it changes
            key = (device.site, device.agent, device.device)
            confirmed_at = device.down_since + confirm
            if confirmed_at > context.now:
                context.wake(key, confirmed_at)
            elif context.lagging and context.now < confirmed_at + LAG_HOLD:
                # The message that says it came back may still be queued: look again in a moment.
                context.wake(key, context.now + LAG_RECHECK)
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
        confirmed = []
        for device in sorted(candidates, key=lambda row: row.down_since):
            key = (device.site, device.agent, device.device)
            if key in ticketed:
                continue  # its ticket is open already: nothing to decide
            if key in closed and device.down_since <= closed[key]:
                continue  # an engineer closed the ticket of this very outage: it must end and recur first
            if context.held(conn, device) is None:
                confirmed.append(device)
        if confirmed:
            _confirmed(conn, context, confirmed)


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


def _confirmed(conn: Connection, context: Context, confirmed: list[Row[Any]]) -> None:
    """Reopen each device's recovered ticket, or open a Critical one, all opened in one batch. Each device is
    read again first, in this transaction: it must still be down since the same moment, not retired, behind
    an online agent (another writer may have changed it since the due devices were read). A ticket another
    collector opened first is skipped: the unique index keeps one."""
    keys = [(device.site, device.agent, device.device) for device in confirmed]
    columns = (devices.c.site, devices.c.agent, devices.c.device)
    down_since = {key: device.down_since for key, device in zip(keys, confirmed, strict=True)}
    still = {
        (row.site, row.agent, row.device): row
        for row in conn.execute(_candidates(context).where(among(conn, columns, keys)))
        if row.down_since == down_since[(row.site, row.agent, row.device)]
    }
    recovered = {
        (row.site, row.agent, row.device): row
        for row in conn.execute(
            select(ticket_table).where(
                of_devices(conn, list(still)),
                ticket_table.c.cause == CAUSE_DEVICE_DOWN,
                ticket_table.c.status.in_(ACTIVE_STATUSES),
            )
        )
    }
    openings: list[tuple[Row[Any], tickets.Opening]] = []
    for key in keys:
        device = still.get(key)
        if device is None:
            continue
        ticket = recovered.get(key)
        if ticket is None:
            opening = tickets.Opening(
                tickets.Subject.of_device(device),
                priority=tickets.PRIORITY_CRITICAL,
                cause=CAUSE_DEVICE_DOWN,
                response_due=context.now,  # set by ``open_many`` on the site's calendar
                evidence=device.checks,
                text=_opened_text(device, device.down_since),
            )
            openings.append((device, opening))
        elif ticket.status == "recovered":
            text = f"Device {device.device} is down again: {device.state_reason}"
            if not tickets.reopen(conn, ticket, context.now, "down-again", text):
                continue  # reopened meanwhile by another writer
            context.done.reopened.append(ticket.number)
            log.info("ticket %s reopened: device %s/%s/%s is down again", ticket.number, *key)
    numbers = context.open_many(conn, [opening for _, opening in openings])
    for (device, _opening), number in zip(openings, numbers, strict=True):
        if number is None:
            continue  # another writer opened it first; the unique index kept it to one
        log.info(
            "ticket %s opened: critical, device %s/%s/%s down since %s",
            number,
            device.site,
            device.agent,
            device.device,
            device.down_since.isoformat(),
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
