"""Signs that a device which still works is unstable: degraded for a while, packet loss, flapping, reboots.

``Signs.load`` reads the recent drops and reboots and the running conditions of the devices being evaluated,
a few queries for all of them; each sign below then says, for one device, why it is unstable (a reason), or
None, and a condition not held long enough yet says when it will have been (``due``). Signs older than the
closing of the device's last High ticket were dealt with: a condition that started before it (a Tap left
without audio on purpose) opens nothing until it ends and recurs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select

from collector.config import UnstableConfig
from collector.incidents.queries import count_after, last_closed, of_devices
from collector.store.schema import CAUSE_DEVICE_UNSTABLE, device_conditions, device_transitions, events

Key = tuple[str, str, str]


@dataclass
class Signs:
    """Signs of instability, per device: recent drops and reboots, and when running conditions started."""

    drops: dict[Key, int]
    reboots: dict[Key, int]
    conditions: dict[tuple[str, str, str, str], datetime]
    #: When the device's latest High ticket was closed: older signs have been dealt with.
    closed: dict[Key, datetime]
    #: When a running condition of a device will have held long enough to be a sign.
    due: dict[Key, datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: Connection, now: datetime, rules: UnstableConfig, keys: Sequence[Key]) -> Signs:
        """The signs of the devices ``keys``."""
        drops_query = (
            select(
                device_transitions.c.site,
                device_transitions.c.agent,
                device_transitions.c.device,
                func.count(),
            )
            .where(
                device_transitions.c.to_state == "down",
                device_transitions.c.at >= now - timedelta(seconds=rules.flap_window),
                of_devices(conn, keys, device_transitions),
            )
            .group_by(device_transitions.c.site, device_transitions.c.agent, device_transitions.c.device)
        )
        reboots_query = (
            select(events.c.site, events.c.agent, events.c.device, func.count())
            .where(
                events.c.type == "reboot",
                events.c.device.is_not(None),
                events.c.received_at >= now - timedelta(seconds=rules.reboot_window),
                # and by the agent's clock: reboots spooled through an outage arrive together but are old
                events.c.ts >= now - timedelta(seconds=rules.reboot_window),
                of_devices(conn, keys, events),
            )
            .group_by(events.c.site, events.c.agent, events.c.device)
        )
        return cls(
            drops={(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(drops_query)},
            reboots={(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(reboots_query)},
            conditions={
                (row.site, row.agent, row.device, row.condition): row.since
                for row in conn.execute(
                    select(device_conditions).where(of_devices(conn, keys, device_conditions))
                )
            },
            closed=last_closed(conn, CAUSE_DEVICE_UNSTABLE, keys),
        )

    def condition(
        self, conn: Connection, key: Key, name: str, *, present: bool, now: datetime
    ) -> datetime | None:
        """Since when a condition has held without a break (None: it does not hold now, or it started before
        the device's last High ticket was closed); the start is stored, and forgotten when it ends."""
        since = self.conditions.get((*key, name))
        if not present:
            if since is not None:
                conn.execute(
                    delete(device_conditions).where(
                        device_conditions.c.site == key[0],
                        device_conditions.c.agent == key[1],
                        device_conditions.c.device == key[2],
                        device_conditions.c.condition == name,
                    )
                )
            return None
        if since is None:
            conn.execute(
                insert(device_conditions).values(
                    site=key[0], agent=key[1], device=key[2], condition=name, since=now
                )
            )
            since = now
        closed = self.closed.get(key)
        return None if closed is not None and since <= closed else since

    def wait(self, key: Key, until: datetime) -> None:
        """A condition of the device becomes a sign at ``until``: look at it again then."""
        known = self.due.get(key)
        if known is None or until < known:
            self.due[key] = until


#: One sign: ``(conn, device row, now, signs, rules) -> reason or None``.
Sign = Callable[[Connection, Any, datetime, Signs, UnstableConfig], str | None]


def _key(device: Any) -> Key:
    return (device.site, device.agent, device.device)


def degraded(conn: Connection, device: Any, now: datetime, signs: Signs, rules: UnstableConfig) -> str | None:
    since = signs.condition(conn, _key(device), "degraded", present=device.state == "degraded", now=now)
    if since is None:
        return None
    if since <= now - timedelta(seconds=rules.degraded_after):
        return f"degraded since {since.isoformat()}: {device.state_reason or 'no reason given'}"
    signs.wait(_key(device), since + timedelta(seconds=rules.degraded_after))
    return None


def packet_loss(
    conn: Connection, device: Any, now: datetime, signs: Signs, rules: UnstableConfig
) -> str | None:
    loss = loss_pct(device.checks)
    present = loss is not None and loss >= rules.loss_pct
    since = signs.condition(conn, _key(device), "loss", present=present, now=now)
    if since is None or loss is None:
        return None
    if since <= now - timedelta(seconds=rules.loss_after):
        return f"packet loss {loss:g} % since {since.isoformat()}"
    signs.wait(_key(device), since + timedelta(seconds=rules.loss_after))
    return None


def flapping(conn: Connection, device: Any, now: datetime, signs: Signs, rules: UnstableConfig) -> str | None:
    key = _key(device)
    drops = signs.drops.get(key, 0)
    closed = signs.closed.get(key)
    if drops >= rules.flap_count and closed is not None:
        drops = count_after(conn, device_transitions, key, closed, device_transitions.c.to_state == "down")
    if drops >= rules.flap_count:
        return f"flapping: down {drops} times in {rules.flap_window:g} s"
    return None


def reboots(conn: Connection, device: Any, now: datetime, signs: Signs, rules: UnstableConfig) -> str | None:
    key = _key(device)
    count = signs.reboots.get(key, 0)
    closed = signs.closed.get(key)
    if count >= rules.reboot_count and closed is not None:
        count = count_after(conn, events, key, closed, events.c.type == "reboot")
    if count >= rules.reboot_count:
        return f"rebooted {count} times in {rules.reboot_window:g} s"
    return None


#: Every sign, in the order their reasons appear on a ticket.
SIGNS: tuple[Sign, ...] = (degraded, packet_loss, flapping, reboots)


def loss_pct(checks: Any) -> float | None:
    """The worst ``metrics.loss_pct`` among a device's check results, if any reports one."""
    worst = None
    for check in checks if isinstance(checks, list) else []:
        metrics = check.get("metrics") if isinstance(check, dict) else None
        value = metrics.get("loss_pct") if isinstance(metrics, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            worst = float(value) if worst is None else max(worst, float(value))
    return worst
