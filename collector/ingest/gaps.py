"""Gaps: per agent start, the highest seq received live and the holes below it; a hole asks the agent to
publish its states again (after the commit)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from collector.ingest.batch import Batch
from collector.store.database import among, upsert_ignore
from collector.store.schema import agent_boots, agents
from collector.store.unnest import update_many
from protocol import Envelope

log = logging.getLogger(__name__)

_UPDATE_BOOT = (
    update(agent_boots)
    .where(
        agent_boots.c.site == bindparam("k_site"),
        agent_boots.c.agent == bindparam("k_agent"),
        agent_boots.c.boot == bindparam("k_boot"),
    )
    .values(
        max_seq=bindparam("k_max"),
        received=agent_boots.c.received + bindparam("k_received"),
        gaps=agent_boots.c.gaps + bindparam("k_gaps"),
        missing=bindparam("k_missing"),
        dropped=agent_boots.c.dropped + bindparam("k_dropped"),
        last_seen=bindparam("k_last"),
    )
)


#: The same update as one statement on PostgreSQL (``update_many``): the values, and what each sets.
_BOOT_COLUMNS = (
    ("site", "varchar"),
    ("agent", "varchar"),
    ("boot", "varchar"),
    ("max", "bigint"),
    ("received", "bigint"),
    ("gaps", "bigint"),
    ("missing", "bigint"),
    ("dropped", "bigint"),
    ("last", "timestamptz"),
)
_BOOT_SETS = {
    "max_seq": "v.max",
    "received": "t.received + v.received",
    "gaps": "t.gaps + v.gaps",
    "missing": "v.missing",
    "dropped": "t.dropped + v.dropped",
    "last_seen": "v.last",
}


def track_seq(conn: Connection, batch: Batch) -> None:
    """Per agent start, follow the highest seq received live and count the holes below it.

    Retained copies (delivered at a subscribe, out of the live stream) are left out. A new start of an
    agent followed live before is followed from seq 1; otherwise its first live message sets the mark (the
    collector may have subscribed after the start began; ``_starting_marks``). A message
    whose seq jumps past the next one opens a gap of the seqs skipped, except the will named by a birth
    (a will that did not fire leaves that one hole on purpose); a late message fills one.

    A few statements per batch, whatever the number of agents: the stored rows were read and locked when the
    batch began (``read_boots``); rows of new boots are created and read, and all are written back in one
    statement.
    """
    by_boot: dict[tuple[str, str, str], list[Envelope]] = {}
    first_seen: dict[tuple[str, str, str], datetime] = {}
    for envelope, received_at, retained in batch.fresh:
        if not retained:
            key = (envelope.site, envelope.agent, envelope.boot)
            by_boot.setdefault(key, []).append(envelope)
            first_seen.setdefault(key, received_at)
    if not by_boot:
        return
    keys = sorted(by_boot)
    stored = _stored_boots(conn, batch, keys, first_seen)
    marks = _starting_marks(conn, keys, {key: row[0] for key, row in stored.items()})
    last_seen = max(received_at for _, received_at, _ in batch.fresh)
    updates: list[dict[str, Any]] = []
    for key in keys:
        site, agent, boot = key
        max_seq, missing = marks[key], stored[key][1]
        before, gaps, dropped = missing, 0, 0
        for envelope in by_boot[key]:
            seq = envelope.seq
            reported = envelope.body.get("dropped") if envelope.kind == "birth" else None
            if type(reported) is int and reported > 0:  # a field the contract does not check
                dropped += reported
            if max_seq is None:
                max_seq = seq
            elif seq > max_seq:
                holes = seq - max_seq - 1
                if envelope.kind == "birth" and max_seq < envelope.body["will_seq"] < seq:
                    holes -= 1
                if holes > 0:
                    gaps += 1
                    missing += holes
                    log.info(
                        "gap in the messages of %s/%s boot %s: %d missing before seq %d",
                        site,
                        agent,
                        boot,
                        holes,
                        seq,
                    )
                    batch.republish.append((site, agent))
                max_seq = seq
            else:
                missing = _late(envelope, missing)
        updates.append(
            {
                "k_site": site,
                "k_agent": agent,
                "k_boot": boot,
                "k_max": max_seq,
                "k_received": len(by_boot[key]),
                "k_gaps": gaps,
                "k_missing": missing,
                "k_dropped": dropped,
                "k_last": last_seen,
            }
        )
        if gaps or missing != before:
            conn.execute(
                update(agents)
                .where(agents.c.site == site, agents.c.agent == agent)
                .values(
                    seq_gaps=agents.c.seq_gaps + gaps,
                    seq_missing=agents.c.seq_missing + (missing - before),
                )
            )
    _write_boots(conn, updates)


def _stored_boots(
    conn: Connection,
    batch: Batch,
    keys: list[tuple[str, str, str]],
    first_seen: dict[tuple[str, str, str], datetime],
) -> dict[tuple[str, str, str], tuple[int | None, int]]:
    """(max_seq, missing) of each of ``keys``: as read when the batch began, and for a boot not stored then,
    its row made now (or another collector's that got there first) and read."""
    stored = {key: batch.boots[key] for key in keys if key in batch.boots}
    new = [key for key in keys if key not in stored]
    if new:
        rows = [
            {
                "site": k[0],
                "agent": k[1],
                "boot": k[2],
                "first_seen": first_seen[k],
                "last_seen": first_seen[k],
            }
            for k in new
        ]
        conn.execute(upsert_ignore(conn, agent_boots), rows)
        stored.update(read_boots(conn, new))
    return stored


def read_boots(
    conn: Connection, keys: Iterable[tuple[str, str, str]]
) -> dict[tuple[str, str, str], tuple[int | None, int]]:
    """The stored boots among ``keys``, (max_seq, missing) each, locked until the commit.

    Read once per batch, before anything is claimed (``Batch.boots``): the seq check and ``track_seq`` both
    use it. Locked in key order, so collectors sharing one database lock in the same order and cannot
    deadlock.
    """
    columns = (agent_boots.c.site, agent_boots.c.agent, agent_boots.c.boot)
    query = (
        select(*columns, agent_boots.c.max_seq, agent_boots.c.missing)
        .where(among(conn, columns, sorted(set(keys))))
        .order_by(*columns)
        .with_for_update()
    )
    return {(r.site, r.agent, r.boot): (r.max_seq, r.missing) for r in conn.execute(query)}


def _write_boots(conn: Connection, updates: list[dict[str, Any]]) -> None:
    """Write back each boot's marks and counts: one statement on PostgreSQL, an executemany on SQLite."""
    if conn.dialect.name != "postgresql":
        conn.execute(_UPDATE_BOOT, updates)
        return
    update_many(
        conn,
        "agent_boots",
        columns=_BOOT_COLUMNS,
        keys=("site", "agent", "boot"),
        sets=_BOOT_SETS,
        rows=[tuple(row[f"k_{name}"] for name, _kind in _BOOT_COLUMNS) for row in updates],
    )


def _late(envelope: Envelope, missing: int) -> int:
    """``missing`` once ``envelope``, below the highest seq received, has arrived. It fills its own hole, and
    a late birth that of its will too (the jump past them counted both; a will that did not fire leaves its
    hole on purpose). A late will fills none: its birth excused it."""
    if envelope.kind == "death":
        return missing
    filled = 2 if envelope.kind == "birth" and envelope.body["will_seq"] < envelope.seq else 1
    return max(0, missing - filled)


def _starting_marks(
    conn: Connection, keys: list[tuple[str, str, str]], max_seqs: dict[tuple[str, str, str], int | None]
) -> dict[tuple[str, str, str], int | None]:
    """The highest seq each boot had before this batch, or None: follow from its first message received.

    A boot seen for the first time starts at 0 when its agent is one this collector has followed live
    before: its session was there when the boot began, so every message from seq 1 on should arrive, and the
    ones before the first received are missing (lost in the broker, say). For an agent never seen live the
    collector may have subscribed after the boot began, and the first message received sets the mark.
    ``keys`` are sorted, so a later boot of an agent new in this batch counts as a new start too.
    """
    marks = dict(max_seqs)
    new = sorted({(site, agent) for site, agent, boot in keys if max_seqs[(site, agent, boot)] is None})
    if not new:
        return marks
    query = (
        select(agent_boots.c.site, agent_boots.c.agent)
        .where(
            among(conn, (agent_boots.c.site, agent_boots.c.agent), new), agent_boots.c.max_seq.is_not(None)
        )
        .distinct()
    )
    known = {(row.site, row.agent) for row in conn.execute(query)}
    for key in keys:
        if marks[key] is None and key[:2] in known:
            marks[key] = 0
        known.add(key[:2])
    return marks
