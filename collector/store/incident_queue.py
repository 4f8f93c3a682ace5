"""The incident queue: which devices the incident engine looks at next, and from when.

Ingest ``touch``es every device whose row a batch changed (a state, the inventory, a retirement) and every
device an event names: due at once. An evaluation takes what is ``due``, the rules say when each device
needs looking at again (its confirm window ends, it has been degraded long enough), and ``settle`` keeps it
until then or forgets it. A device touched while it was being evaluated (``changes`` moved on) stays due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, Connection, and_, bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from collector.store.schema import incident_queue

DeviceKey = tuple[str, str, str]

#: The due time of a device that changed: before any evaluation.
AT_ONCE = datetime(1970, 1, 1, tzinfo=UTC)

_KEY = (
    incident_queue.c.site == bindparam("k_site"),
    incident_queue.c.agent == bindparam("k_agent"),
    incident_queue.c.device == bindparam("k_device"),
    incident_queue.c.changes == bindparam("k_changes"),
)
_FORGET = delete(incident_queue).where(*_KEY)
_LATER = update(incident_queue).where(*_KEY).values(due_at=bindparam("k_due"))


@dataclass(frozen=True)
class Queued:
    """A device due for evaluation, and how many touches it had when it was read."""

    key: DeviceKey
    changes: int


def touch(conn: Connection, keys: Iterable[DeviceKey]) -> None:
    """Make these devices due at once (one statement, keys in order so writers lock alike)."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(incident_queue)
    statement = statement.on_conflict_do_update(
        index_elements=["site", "agent", "device"],
        set_={"due_at": AT_ONCE, "changes": incident_queue.c.changes + 1},
    )
    conn.execute(
        statement,
        [{"site": k[0], "agent": k[1], "device": k[2], "due_at": AT_ONCE, "changes": 0} for k in ordered],
    )


def due(
    conn: Connection, now: datetime, limit: int, *, where: ColumnElement[bool] | None = None
) -> list[Queued]:
    """Up to ``limit`` devices due by ``now``, longest waiting first; ``where`` narrows them further."""
    query = select(
        incident_queue.c.site, incident_queue.c.agent, incident_queue.c.device, incident_queue.c.changes
    )
    conditions = [incident_queue.c.due_at <= now]
    if where is not None:
        conditions.append(where)
    query = query.where(and_(*conditions)).order_by(incident_queue.c.due_at).limit(limit)
    return [Queued((row.site, row.agent, row.device), int(row.changes)) for row in conn.execute(query)]


def settle(conn: Connection, queued: Iterable[Queued], wakes: dict[DeviceKey, datetime]) -> None:
    """After an evaluation: each device looked at is due again at its wake time, or forgotten without one;
    unless it was touched meanwhile, which leaves it due at once."""
    forget: list[dict[str, object]] = []
    later: list[dict[str, object]] = []
    for item in sorted(queued, key=lambda q: q.key):
        params: dict[str, object] = {
            "k_site": item.key[0],
            "k_agent": item.key[1],
            "k_device": item.key[2],
            "k_changes": item.changes,
        }
        wake = wakes.get(item.key)
        if wake is None:
            forget.append(params)
        else:
            later.append({**params, "k_due": wake})
    if forget:
        conn.execute(_FORGET, forget)
    if later:
        conn.execute(_LATER, later)
