"""Read-side views of the store shared by the web API and the CLI: plain dicts, JSON-ready on request."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, case, func, select

from collector.store.schema import agents, devices, rejected
from protocol import format_ts


def list_agents(conn: Connection) -> list[dict[str, Any]]:
    """Every agent with its online flag, boot, version and when it was last heard from."""
    rows = conn.execute(select(agents).order_by(agents.c.site, agents.c.agent))
    return [dict(row._mapping) for row in rows]


def list_devices(conn: Connection, *, include_retired: bool = False) -> list[dict[str, Any]]:
    """The devices with their inventory and current state; retired ones (no longer in their agent's
    inventory) only with ``include_retired``. Each carries ``retired`` and ``retired_at``."""
    query = select(devices).order_by(devices.c.site, devices.c.agent, devices.c.device)
    if not include_retired:
        query = query.where(devices.c.retired_at.is_(None))
    return [{**row._mapping, "retired": row.retired_at is not None} for row in conn.execute(query)]


#: Device states, the worst first.
STATES = ("down", "degraded", "unknown", "up")


def count_devices(conn: Connection, where: ColumnElement[bool] | None = None) -> dict[str, int]:
    """How many devices (retired ones left out; ``where``: those only) are in each state, the worst first;
    counted by the store, one row per state."""
    query = (
        select(devices.c.state, func.count()).where(devices.c.retired_at.is_(None)).group_by(devices.c.state)
    )
    if where is not None:
        query = query.where(where)
    counts = dict.fromkeys(STATES, 0)
    for state, count in conn.execute(query):
        counts[state if state in counts else "unknown"] += int(count)
    return counts


def worst_devices(
    conn: Connection, limit: int, where: ColumnElement[bool] | None = None
) -> list[dict[str, Any]]:
    """The first ``limit`` devices (retired ones left out; ``where``: those only), the worst state first, then
    by site, agent and device."""
    rank = case({state: index for index, state in enumerate(STATES[:3])}, value=devices.c.state, else_=3)
    query = (
        select(devices)
        .where(devices.c.retired_at.is_(None))
        .order_by(rank, devices.c.site, devices.c.agent, devices.c.device)
        .limit(limit)
    )
    if where is not None:
        query = query.where(where)
    return [dict(row._mapping) for row in conn.execute(query)]


def list_rejected(conn: Connection, limit: int = 100) -> list[dict[str, Any]]:
    """The latest rejected messages, newest first; the payload as text (undecodable bytes replaced)."""
    query = select(rejected).order_by(rejected.c.id.desc()).limit(limit)
    return [
        {
            "topic": row.topic,
            "reason": row.reason,
            "error": row.error,
            "received_at": row.received_at,
            "payload": bytes(row.payload).decode("utf-8", errors="replace"),
        }
        for row in conn.execute(query)
    ]


def count_rejected(conn: Connection) -> int:
    """How many messages were rejected in all."""
    return int(conn.execute(select(func.count()).select_from(rejected)).scalar_one())


def jsonable(value: Any) -> Any:
    """``value`` with every datetime as RFC 3339 UTC (``2026-11-24T21:50:02.114Z``), ready for ``json``."""
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return value
