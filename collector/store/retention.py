"""Retention: how long each table keeps its rows (the ``retention:`` keys), and the run that applies it.

One run (``run``), every ``retention.every_minutes`` in the collector (``Expiry``) or by hand
(``hezo-collector retention run``): on PostgreSQL, make the day partitions a few days ahead; roll the hours
over into the hourly history; move the messages mark and drop the identities behind it; drop the samples
past their days; delete what is left in bounded batches (the default partitions on PostgreSQL, the tables on
SQLite, events and history on both), each batch its own short transaction. docs/retention.md says why.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Column, Engine, MetaData, Table, delete, func, literal_column, select
from sqlalchemy.engine import Connection

from collector.store import history, partitions
from collector.store.database import as_written, utcnow, write_transaction
from collector.store.horizons import HISTORY, MESSAGES, RUN_LOCK, lock_out_claims, mark, set_mark, store_lock
from collector.store.schema import UTCDateTime, events, messages, samples

log = logging.getLogger(__name__)


class RetentionConfig(BaseModel):
    """How long the store keeps each kind of row, in days counted in whole UTC days (docs/retention.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="run retention in the collector")
    every_minutes: float = Field(default=60.0, ge=1, le=1440, description="minutes between two runs")
    samples_days: int = Field(default=7, ge=1, le=3650, description="raw telemetry samples")
    messages_days: int = Field(
        default=7, ge=1, le=3650, description="message identities; no message older is taken"
    )
    events_days: int = Field(default=180, ge=1, le=3650, description="device events")
    history_days: int = Field(default=400, ge=1, le=3650, description="hourly history of the samples")
    history_lag_minutes: int = Field(
        default=60, ge=1, le=1440, description="an hour is rolled up this long after it ends"
    )
    partitions_ahead_days: int = Field(
        default=3, ge=2, le=60, description="PostgreSQL: day partitions made ahead of today"
    )
    delete_batch: int = Field(default=5000, ge=100, le=100_000, description="rows per delete transaction")

    @model_validator(mode="after")
    def _identities_outlive_samples(self) -> RetentionConfig:
        if self.messages_days < self.samples_days:
            raise ValueError(
                f"messages_days ({self.messages_days}) must be at least samples_days ({self.samples_days}): "
                "a message older than its identities' days is not taken, so its samples would be lost"
            )
        return self


@dataclass
class Outcome:
    """What one run did."""

    made: dict[str, list[date]] = field(default_factory=dict)
    dropped: dict[str, list[date]] = field(default_factory=dict)
    deleted: Counter[str] = field(default_factory=Counter)
    hours: int = 0
    #: Hours left out of the history: their samples could not be rolled up (logged, one by one).
    hours_skipped: list[datetime] = field(default_factory=list)
    #: Another run held the store (PostgreSQL): this one did nothing.
    skipped: bool = False


def kept_from(today: date, days: int) -> datetime:
    """The first moment still kept when ``days`` whole days are kept before ``today`` (UTC)."""
    return partitions.day_start(today - timedelta(days=days))


def run(engine: Engine, settings: RetentionConfig, now: datetime) -> Outcome:
    """Apply ``settings`` to the store once, at ``now``. On PostgreSQL one run at a time per store: a run
    that finds another one going (another collector's) does nothing and says so (``skipped``)."""
    if engine.dialect.name != "postgresql":
        return _run(engine, settings, now)
    with engine.connect() as holder:
        if not holder.execute(select(func.pg_try_advisory_lock(*store_lock(RUN_LOCK)))).scalar_one():
            holder.rollback()
            return Outcome(skipped=True)
        holder.commit()
        try:
            return _run(engine, settings, now)
        finally:
            holder.execute(select(func.pg_advisory_unlock(*store_lock(RUN_LOCK))))
            holder.commit()


def prepare(engine: Engine, settings: RetentionConfig, now: datetime) -> dict[str, list[date]]:
    """On PostgreSQL, make the day partitions from today to ``partitions_ahead_days`` ahead; the days made,
    per table. Nothing to do on SQLite."""
    made: dict[str, list[date]] = {}
    if engine.dialect.name == "postgresql":
        today = now.astimezone(UTC).date()
        last = today + timedelta(days=settings.partitions_ahead_days)
        with write_transaction(engine) as conn:
            for table in partitions.PARTITIONED:
                made[table] = partitions.ensure_days(conn, table, today, last)
    return made


def _run(engine: Engine, settings: RetentionConfig, now: datetime) -> Outcome:
    today = now.astimezone(UTC).date()
    postgres = engine.dialect.name == "postgresql"
    outcome = Outcome(made=prepare(engine, settings, now))
    samples_from = kept_from(today, settings.samples_days)
    history_from = kept_from(today, settings.history_days)
    lag = timedelta(minutes=settings.history_lag_minutes)
    rolled = history.roll_up(engine, now, lag=lag, kept_from=history_from)
    outcome.hours, outcome.hours_skipped = rolled.hours, rolled.skipped
    messages_from = kept_from(today, settings.messages_days)
    with write_transaction(engine) as conn:
        # Claims wait while the mark moves and the identities behind it go: none reads the old mark and
        # then inserts behind the new one (collector/store/horizons.py).
        lock_out_claims(conn)
        marked = mark(conn, MESSAGES)
        if marked is None or marked < messages_from:
            set_mark(conn, MESSAGES, messages_from)
        if postgres:
            outcome.dropped["messages"] = partitions.drop_days_before(conn, "messages", messages_from.date())
    if postgres:
        with write_transaction(engine) as conn:
            outcome.dropped["samples"] = partitions.drop_days_before(conn, "samples", samples_from.date())
    batch = settings.delete_batch
    if postgres:
        expired = {
            "messages": (_default("messages"), messages_from),
            "samples": (_default("samples"), samples_from),
        }
    else:
        expired = {"messages": (messages, messages_from), "samples": (samples, samples_from)}
    for name, (target, cutoff) in expired.items():
        outcome.deleted[name] = _delete_before(engine, target, "ts", cutoff, batch, written_fast=True)
    events_from = kept_from(today, settings.events_days)
    outcome.deleted["events"] = _delete_before(engine, events, "ts", events_from, batch)
    hours = history.sample_hours
    outcome.deleted["sample_hours"] = _delete_before(engine, hours, "hour", history_from, batch)
    return outcome


def _default(table: str) -> Table:
    """A default partition, described just enough to delete from it by ``ts``."""
    return Table(f"{table}_default", MetaData(), Column("ts", UTCDateTime, nullable=False))


def _delete_before(
    engine: Engine, table: Table, column: str, before: datetime, limit: int, *, written_fast: bool = False
) -> int:
    """Delete the rows of ``table`` whose ``column`` is before ``before``, ``limit`` rows per transaction, so
    the writer (SQLite's one write lock) and the tables' other users wait for one batch at most.
    ``written_fast``: the rows were written through ``driver_value`` (``as_written``)."""
    total = 0
    while True:
        with write_transaction(engine) as conn:
            row_id: Any = literal_column("ctid" if conn.dialect.name == "postgresql" else "rowid")
            bound = as_written(conn, table.c[column], before) if written_fast else before
            chosen = select(row_id).select_from(table).where(table.c[column] < bound).limit(limit)
            count = int(conn.execute(delete(table).where(row_id.in_(chosen))).rowcount)
        total += count
        if count < limit:
            return total


def status(conn: Connection, settings: RetentionConfig) -> list[dict[str, Any]]:
    """Per table: the days kept, its rows (estimated on PostgreSQL); bytes and partitions on PostgreSQL."""
    postgres = conn.dialect.name == "postgresql"
    kept = {
        "messages": settings.messages_days,
        "samples": settings.samples_days,
        "events": settings.events_days,
        "sample_hours": settings.history_days,
    }
    found: list[dict[str, Any]] = []
    for name, days in kept.items():
        row: dict[str, Any] = {"table": name, "days": days, "rows": None, "bytes": None, "partitions": None}
        if postgres:
            parts = partitions.days(conn, name) if name in partitions.PARTITIONED else {}
            tables = [name, *parts.values()] + ([f"{name}_default"] if name in partitions.PARTITIONED else [])
            rows, size = conn.exec_driver_sql(
                "SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint, "
                "coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint "
                "FROM pg_class c WHERE c.oid = ANY(ARRAY(SELECT to_regclass(t) FROM unnest(%s::text[]) t))",
                (tables,),
            ).one()
            row.update(rows=rows, bytes=size, partitions=len(parts))
        else:
            plain = {"messages": messages, "samples": samples, "events": events}
            table = plain.get(name, history.sample_hours)
            row["rows"] = conn.execute(select(func.count()).select_from(table)).scalar_one()
        found.append(row)
    return found


def marks(conn: Connection) -> dict[str, datetime | None]:
    """The earliest message ``ts`` taken, and the hour the history is rolled up to."""
    return {"messages kept from": mark(conn, MESSAGES), "history rolled up to": mark(conn, HISTORY)}


class Expiry:
    """Retention in the running collector, in a thread of its own: at start, today's and the coming days'
    partitions (so that ingest never fills a default partition with a whole day to move later); then a run
    every ``every_minutes``, never at start, so a restart does no heavy deleting. A failed run is logged and
    tried again at the next one."""

    def __init__(
        self,
        engine: Engine,
        settings: RetentionConfig,
        *,
        now: Callable[[], datetime] = utcnow,
        every: float | None = None,
    ) -> None:
        """``every``: seconds between runs, instead of ``settings.every_minutes`` (for tests)."""
        self._engine = engine
        self._settings = settings
        self._now = now
        self._every = every if every is not None else settings.every_minutes * 60
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hezo-collector-retention", daemon=True)
        #: Runs finished, for tests to wait on.
        self.runs = 0

    def start(self) -> None:
        if self._settings.enabled:
            self._thread.start()

    def alive(self) -> bool:
        """Whether the thread runs (not when ``retention.enabled`` is off)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self) -> Outcome:
        outcome = run(self._engine, self._settings, self._now())
        if outcome.skipped:
            log.info("retention: another collector is running it on this store")
        dropped = {table: len(days) for table, days in outcome.dropped.items() if days}
        deleted = {table: count for table, count in outcome.deleted.items() if count}
        if dropped or deleted:
            log.info("retention: day partitions dropped %s, rows deleted %s", dropped, deleted)
        self.runs += 1
        return outcome

    def _loop(self) -> None:
        try:
            prepare(self._engine, self._settings, self._now())
        except Exception:
            log.exception("retention: could not make the day partitions; trying again at the next run")
        while not self._stopping.wait(self._every):
            try:
                self.run_once()
            except Exception:
                log.exception("retention run failed; trying again in %g s", self._every)
