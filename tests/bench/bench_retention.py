"""What retention keeps and what expiring a day costs, on the local PostgreSQL (a schema of its own each).

Run: python -m tests.bench.bench_retention [--agents 2] [--days 4] [--rows 200000 1000000] [--rounds 3]

1. Bytes per device per day: two stores take the same simulated stream through ``Ingest`` (each agent has 10
   devices and publishes one telemetry message every 30 s with 3 metrics per device, the issue's stream), day
   after day; one runs retention after each day (samples and identities 1 day, hourly history kept), the other
   never does (the reference). Printed: what each store grew by over its last day, per device, and what each
   holds at the end; then, from those measured figures, what 100k devices hold with the default retention.
2. Expiring one day: a day partition of ``samples`` of N rows is dropped; the reference is deleting the same
   rows from an unpartitioned copy, in the same run. The roll-up of that day into the hourly history is timed
   too: it is the part of expiry that grows with the fleet. Rows per day at 100k devices with this stream:
   100k x 2880 x 3 = 864M; the figures for it are extrapolated from the measured rates and say so.
3. What the ``ts`` indexes cost ingest: one day of the stream of part 1 into a store as migrated and into one
   without them (the reference; both read the messages mark in every claim), on SQLite and PostgreSQL, best
   of ``--rounds``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store import history, partitions
from collector.store.retention import RetentionConfig, run
from protocol import Envelope, Topics, encode, format_ts
from tests.support.collector import boot_id, migrated_engine
from tests.support.postgres import postgres_schema

START = datetime(2026, 11, 2, tzinfo=UTC)
DEVICES_PER_AGENT = 10
METRICS = ("https.duration_ms", "icmp.rtt_ms", "usb.functions")
EVERY = timedelta(seconds=30)
FLEET = 100_000
DEFAULTS = RetentionConfig()
ON = RetentionConfig(samples_days=1, messages_days=1, history_days=3650)


def store_bytes(engine: Engine) -> int:
    """Every table, partition, index and TOAST of the store's schema, in bytes."""
    with engine.connect() as conn:
        found = conn.execute(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar_one()
    return int(found)


def table_bytes(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        names = [table, f"{table}_default", *partitions.days(conn, table).values()]
        found = conn.execute(
            text(
                "SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0) "
                "FROM unnest(CAST(:names AS text[])) t"
            ),
            {"names": names},
        ).scalar_one()
    return int(found)


def one_day(ingest: Ingest, agents: int, day: int) -> None:
    """One simulated day of telemetry from ``agents`` agents, in batches of 500 messages."""
    topics = Topics("hezo/v1")
    moment = START + timedelta(days=day)
    end = moment + timedelta(days=1)
    seq = day * int(timedelta(days=1) / EVERY)
    batch: list[tuple[str, bytes, datetime, bool]] = []
    while moment < end:
        seq += 1
        stamp = format_ts(moment)
        for n in range(agents):
            samples = [
                {"device": f"d{i}", "metric": metric, "value": float(seq % 97 + i), "ts": stamp}
                for i in range(DEVICES_PER_AGENT)
                for metric in METRICS
            ]
            envelope = Envelope("hq", f"pc-{n}", boot_id(1), seq, stamp, "telemetry", {"samples": samples})
            batch.append((topics.telemetry("hq", f"pc-{n}"), encode(envelope), moment, False))
        if len(batch) >= 500:
            ingest.handle_batch(batch)
            batch = []
        moment += EVERY
    if batch:
        ingest.handle_batch(batch)


def kept_per_day(agents: int, days: int) -> None:
    devices = agents * DEVICES_PER_AGENT
    with postgres_schema() as on, postgres_schema() as off:
        stores = {"retention on": on, "retention off (reference)": off}
        ingests = {name: Ingest(engine, Metrics(), "hezo/v1") for name, engine in stores.items()}
        run(on, ON, START)
        grown: dict[str, int] = {}
        for day in range(days):
            before = {name: store_bytes(engine) for name, engine in stores.items()}
            for ingest in ingests.values():
                one_day(ingest, agents, day)
            run(on, ON, START + timedelta(days=day + 1, hours=2))
            grown = {name: store_bytes(engine) - before[name] for name, engine in stores.items()}
        print(f"\n1. bytes per device per day: {devices} devices, {days} days, PostgreSQL")
        print(f"{'store':<28}{'last day grew, per device':>28}{'held at the end, per device':>30}")
        for name, engine in stores.items():
            print(f"{name:<28}{grown[name] / devices:>28,.0f}{store_bytes(engine) / devices:>30,.0f}")
        raw = (table_bytes(off, "samples") + table_bytes(off, "messages")) / devices / days
        hours = table_bytes(on, "sample_hours") / devices / days
        print(f"   raw per device per day (samples + identities, reference store): {raw:,.0f} B")
        print(f"   hourly history per device per day: {hours:,.0f} B (ratio raw/history {raw / hours:,.0f})")
        held = FLEET * (raw * DEFAULTS.samples_days + hours * DEFAULTS.history_days)
        print(
            f"   extrapolated, {FLEET:,} devices, default retention ({DEFAULTS.samples_days} days raw, "
            f"{DEFAULTS.history_days} days history): {held / 1e9:,.0f} GB held at steady state, growing "
            f"{FLEET * hours / 1e9:,.2f} GB a day; without retention: growing {FLEET * raw / 1e9:,.0f} GB "
            "a day"
        )


def expire_one_day(rows: int) -> tuple[float, float, float]:
    """Seconds to drop a day partition of ``rows`` samples, to delete them from a plain table, to roll the
    day's hours up."""
    day = START.date()
    # The stream's shape: series (a device's metric) of one sample every 30 s, in time order as they arrive.
    series = max(1, rows // int(timedelta(days=1) / EVERY))
    fill = (
        "INSERT INTO {table} (site, agent, boot, seq, idx, device, metric, value, ts) "
        "SELECT 'hq', 'pc-' || (g %% %(series)s / 30), 'b', g, 0, 'd' || (g %% %(series)s / 3 %% 10), "
        "'m' || (g %% 3), g %% 97, %(start)s::timestamptz + (g / %(series)s) * interval '30 seconds' "
        "FROM generate_series(0, %(rows)s - 1) g"
    )
    with postgres_schema() as engine:
        with engine.begin() as conn:
            partitions.make_day(conn, "samples", day)
            values = {"start": START, "rows": rows, "series": series}
            conn.exec_driver_sql(fill.format(table="samples"), values)
            conn.exec_driver_sql("CREATE TABLE plain (LIKE samples)")
            conn.exec_driver_sql(fill.format(table="plain"), values)
            conn.exec_driver_sql("CREATE INDEX ix_plain_ts ON plain (ts)")
        # What autovacuum has done by the time an hour is rolled up (an hour after it ends): block ranges
        # summarised (autosummarize), statistics gathered.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        started = time.perf_counter()
        hours = history.roll_up(
            engine, START + timedelta(days=1, hours=2), lag=timedelta(hours=1), kept_from=START
        ).hours
        roll_up = time.perf_counter() - started
        assert hours >= 24
        started = time.perf_counter()
        with engine.begin() as conn:
            partitions.drop_days_before(conn, "samples", day + timedelta(days=1))
        drop = time.perf_counter() - started
        started = time.perf_counter()
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM plain WHERE ts < %s", (START + timedelta(days=1),))
        delete = time.perf_counter() - started
    return drop, delete, roll_up


def ingest_seconds(engine: Engine, agents: int, *, indexed: bool) -> float:
    if not indexed:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_samples_ts")
            conn.exec_driver_sql("DROP INDEX ix_messages_ts")
    started = time.perf_counter()
    one_day(Ingest(engine, Metrics(), "hezo/v1"), agents, 0)
    return time.perf_counter() - started


def ingest_cost(agents: int, rounds: int) -> None:
    print(f"\n3. one day of {agents * DEVICES_PER_AGENT} devices ingested, best of {rounds}")
    print(f"{'store':<12}{'as migrated':>14}{'no ts indexes (reference)':>28}{'ratio':>8}")
    for name in ("sqlite", "postgresql"):
        best = {True: float("inf"), False: float("inf")}
        for _ in range(rounds):
            for indexed in (True, False):
                if name == "sqlite":
                    with tempfile.TemporaryDirectory() as tmp:
                        engine = migrated_engine(Path(tmp))
                        best[indexed] = min(best[indexed], ingest_seconds(engine, agents, indexed=indexed))
                        engine.dispose()
                else:
                    with postgres_schema() as engine:
                        best[indexed] = min(best[indexed], ingest_seconds(engine, agents, indexed=indexed))
        print(f"{name:<12}{best[True]:>13.2f}s{best[False]:>27.2f}s{best[True] / best[False]:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=2, help="agents of 10 devices in part 1")
    parser.add_argument("--days", type=int, default=4, help="simulated days in part 1")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part 3")
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[200_000, 1_000_000], help="rows of a day, part 2"
    )
    args = parser.parse_args()
    kept_per_day(args.agents, args.days)
    day_rows = FLEET * int(timedelta(days=1) / EVERY) * len(METRICS)
    print("\n2. expiring one day of samples, PostgreSQL")
    print(
        f"{'rows in the day':>16}{'drop partition':>16}{'DELETE (reference)':>20}{'ratio':>8}{'roll-up':>10}"
    )
    drop = delete = roll_up = 0.0
    rows = 1
    for rows in args.rows:
        drop, delete, roll_up = expire_one_day(rows)
        print(
            f"{rows:>16,}{drop * 1000:>14.1f}ms{delete * 1000:>18.1f}ms{delete / drop:>8.0f}{roll_up:>9.2f}s"
        )
    scale = day_rows / rows
    print(
        f"   {FLEET:,} devices make {day_rows:,} rows a day; linearly from the largest day measured "
        f"(an upper bound for the drop, which reads no row and only unlinks files): drop "
        f"{drop * scale:,.0f} s, DELETE {delete * scale / 60:,.0f} min (plus the VACUUM it leaves), "
        f"roll-up {roll_up * scale / 60:,.0f} min "
        "of PostgreSQL time, spread over the day hour by hour"
    )

    ingest_cost(args.agents, args.rounds)


if __name__ == "__main__":
    main()
