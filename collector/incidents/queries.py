"""Reads several rules share: tickets joined to their devices, and what the last closed ticket of a device
already dealt with."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from collector.store.database import among
from collector.store.schema import device_transitions, devices
from collector.store.schema import tickets as ticket_table


def same_device() -> Any:
    """The join of a ticket to its device's row."""
    return and_(
        devices.c.site == ticket_table.c.site,
        devices.c.agent == ticket_table.c.agent,
        devices.c.device == ticket_table.c.device,
    )


def tickets_with_devices(*conditions: Any) -> Any:
    """Tickets (id, number) with their device's key, where ``conditions`` hold for ticket and device."""
    columns = (ticket_table.c.id, ticket_table.c.number, devices.c.site, devices.c.agent, devices.c.device)
    return select(*columns).join(devices, same_device()).where(*conditions)


def of_devices(conn: Connection, keys: Sequence[tuple[str, str, str]], table: Any = ticket_table) -> Any:
    """``table``'s rows of these devices (``(site, agent, device)`` keys)."""
    return among(conn, (table.c.site, table.c.agent, table.c.device), keys)


def last_closed(
    conn: Connection, cause: str, keys: Sequence[tuple[str, str, str]]
) -> dict[tuple[str, str, str], datetime]:
    """When each of these devices' last ticket of ``cause`` was closed: signs from before it do not count
    again."""
    columns = (ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device)
    query = (
        select(*columns, func.max(ticket_table.c.closed_at))
        .where(
            ticket_table.c.cause == cause,
            ticket_table.c.status == "closed",
            ticket_table.c.closed_at.is_not(None),
            of_devices(conn, keys),
        )
        .group_by(*columns)
    )
    return {(row[0], row[1], row[2]): row[3] for row in conn.execute(query)}


def count_after(conn: Connection, table: Any, key: tuple[str, str, str], after: datetime, kind: Any) -> int:
    """How many rows of ``table`` (transitions, or events) of this device of ``kind`` came after ``after``."""
    moment = table.c.at if table is device_transitions else table.c.received_at
    query = select(func.count()).where(
        table.c.site == key[0], table.c.agent == key[1], table.c.device == key[2], kind, moment > after
    )
    return int(conn.execute(query).scalar_one())
