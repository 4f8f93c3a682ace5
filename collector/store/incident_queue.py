"""The incident queue: which devices the incident engine looks at next, and from when.

Ingest ``touch``es every device whose row a batch changed (a state, the inventory, a retirement) and every
device an event names: due from the time the batch arrived (a person's change to a ticket: at once). An
evaluation takes what is ``due``, the rules say when each device needs looking at again (its confirm window
ends, it has been degraded long enough), and ``settle`` keeps it until then or forgets it. A device touched
while it was being evaluated (``changes`` moved on) stays due.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Index,
    String,
    Table,
    and_,
    bindparam,
    case,
    delete,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from collector.store.schema import UTCDateTime, metadata
from collector.store.unnest import delete_many, update_many
from common.fnv import site_hash

incident_queue = Table(
    "incident_queue",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("agent", String(64), primary_key=True),
    Column("device", String(64), primary_key=True),
    Column("due_at", UTCDateTime, nullable=False),
    Column("changes", BigInteger, nullable=False, server_default="0"),
    # The site's FNV-1a hash: its partition among N is this modulo N, so a collector of a cluster reads
    # only its own partitions' devices (``due``'s ``partitions``), whatever N.
    Column("site_hash", BigInteger, nullable=False, server_default="0"),
    Index("ix_incident_queue_due_at", "due_at"),
)

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
#: A queued device's key and its count of touches, as ``unnest`` columns.
_QUEUED = (("site", "varchar"), ("agent", "varchar"), ("device", "varchar"), ("changes", "bigint"))
_LATER = update(incident_queue).where(*_KEY).values(due_at=bindparam("k_due"))


@dataclass(frozen=True)
class Queued:
    """A device due for evaluation, and how many touches it had when it was read."""

    key: DeviceKey
    changes: int


def touch(conn: Connection, keys: Iterable[DeviceKey], at: datetime = AT_ONCE) -> None:
    """Make these devices due from ``at`` (one statement, keys in order so writers lock alike): ingest gives
    the time the change arrived, so a backlog is looked at in the order it came and a confirm window that
    ends meanwhile is not queued behind it; a person's change (``AT_ONCE``) goes first. A device due earlier
    already keeps its place."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(incident_queue)
    statement = statement.on_conflict_do_update(
        index_elements=["site", "agent", "device"],
        set_={
            "due_at": case(
                (incident_queue.c.due_at < statement.excluded.due_at, incident_queue.c.due_at),
                else_=statement.excluded.due_at,
            ),
            "changes": incident_queue.c.changes + 1,
        },
    )
    conn.execute(
        statement,
        [
            {
                "site": k[0],
                "agent": k[1],
                "device": k[2],
                "due_at": at,
                "changes": 0,
                "site_hash": site_hash(k[0]),
            }
            for k in ordered
        ],
    )


def due(
    conn: Connection,
    now: datetime,
    limit: int,
    *,
    where: ColumnElement[bool] | None = None,
    partitions: tuple[int, Iterable[int]] | None = None,
) -> list[Queued]:
    """Up to ``limit`` devices due by ``now``, longest waiting first; ``where`` narrows them further, and
    ``partitions`` (N, the partitions among N) to the sites of those partitions."""
    query = select(
        incident_queue.c.site, incident_queue.c.agent, incident_queue.c.device, incident_queue.c.changes
    )
    conditions = [incident_queue.c.due_at <= now]
    if where is not None:
        conditions.append(where)
    if partitions is not None:
        count, among = partitions
        conditions.append((incident_queue.c.site_hash % count).in_(sorted(among)))
    query = query.where(and_(*conditions)).order_by(incident_queue.c.due_at).limit(limit)
    return [Queued((row.site, row.agent, row.device), int(row.changes)) for row in conn.execute(query)]


def settle(conn: Connection, queued: Iterable[Queued], wakes: dict[DeviceKey, datetime]) -> None:
    """After an evaluation: each device looked at is due again at its wake time, or forgotten without one;
    unless it was touched meanwhile, which leaves it due at once."""
    forget: list[tuple[str, str, str, int]] = []
    later: list[tuple[str, str, str, int, datetime]] = []
    for item in sorted(queued, key=lambda q: q.key):
        wake = wakes.get(item.key)
        if wake is None:
            forget.append((*item.key, item.changes))
        else:
            later.append((*item.key, item.changes, wake))
    if conn.dialect.name == "postgresql":
        # One statement each, not one per device (an evaluation settles up to 2,000).
        delete_many(conn, "incident_queue", _QUEUED, forget)
        update_many(
            conn,
            "incident_queue",
            columns=(*_QUEUED, ("due_at", "timestamptz")),
            keys=[name for name, _kind in _QUEUED],
            sets={"due_at": "v.due_at"},
            rows=later,
        )
        return
    names = ("k_site", "k_agent", "k_device", "k_changes", "k_due")
    if forget:
        conn.execute(_FORGET, [dict(zip(names, row, strict=False)) for row in forget])
    if later:
        conn.execute(_LATER, [dict(zip(names, row, strict=True)) for row in later])
