"""The High rule: a device that still works but shows signs of instability (``signs``: degraded for a while,
packet loss, flapping, repeated reboots) behind an online agent gets a High ticket, unless a Critical or High
ticket already covers it or it is held back."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection, select

from collector import tickets
from collector.incidents.evaluation import Context
from collector.incidents.queries import of_devices
from collector.incidents.signs import SIGNS, Signs
from collector.store.schema import ACTIVE_STATUSES, CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)


class Unstable:
    def apply(self, conn: Connection, context: Context) -> None:
        rows = [row for row in context.devices if row.retired_at is None and row.agent_online]
        if not rows:
            return
        keys = [(row.site, row.agent, row.device) for row in rows]
        rules = context.rules.unstable
        signs = Signs.load(conn, context.now, rules, keys)
        active = {
            (row.site, row.agent, row.device)
            for row in conn.execute(
                select(ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device).where(
                    ticket_table.c.status.in_(ACTIVE_STATUSES),
                    ticket_table.c.cause.in_((CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE)),
                    of_devices(conn, keys),
                )
            )
        }
        for device in rows:
            key = (device.site, device.agent, device.device)
            found = [sign(conn, device, context.now, signs, rules) for sign in SIGNS]
            reasons = [reason for reason in found if reason is not None]
            if key in signs.due:
                context.wake(key, signs.due[key])
            # One incident per device: an active Critical or High ticket already covers it (closing that
            # ticket makes the device due again).
            if not reasons or key in active or context.held(conn, device) is not None:
                continue
            _open(conn, context, device, reasons)


def _open(conn: Connection, context: Context, device: Any, reasons: list[str]) -> None:
    model = device.model or "device"
    text = (
        f"{model} {device.device} (serial {device.serial or 'unknown serial'}) in "
        f"{device.room or 'unknown room'} at site {device.site} is unstable: "
        f"{'; '.join(reasons)}. "
        f"Reported by agent {device.agent}."
    )
    number = context.open(
        conn,
        tickets.Subject.of_device(device),
        priority=tickets.PRIORITY_HIGH,
        cause=CAUSE_DEVICE_UNSTABLE,
        evidence={"reasons": reasons, "checks": device.checks},
        text=text,
        summary="; ".join(reasons),
    )
    if number is not None:  # None: another collector opened it first
        log.info("ticket %s opened: high, %s", number, text)
