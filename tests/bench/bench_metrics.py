"""What a scrape of the collector's /metrics and /metrics/fleet costs, by number of devices (SQLite in a
temporary directory).

Run: python -m tests.bench.bench_metrics [--agents 5 25 50 250] [--rounds 5]

Each agent has 20 devices, one in five down with its Critical ticket open. A scrape that misses the cache
reads the store and renders the exposition; one within the 5-second cache only renders. The reference is one
plain read of every device row and every ticket row, the least any reading of the store must do. Also shown:
the series and bytes of one exposition (the cardinality docs/metrics.md promises for /metrics/fleet: about 10
to 16 a device; /metrics has the fleet's totals and a series or two per ticket not closed).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import select

from collector.incidents.engine import IncidentEngine
from collector.metrics import StoreCollector, read_fleet, read_summary
from collector.store.schema import devices, tickets
from tests.support.collector import Clock, fill_rooms, migrated_engine

DEVICES_PER_AGENT = 20


class Ticks:
    """A monotonic clock the benchmark moves past the cache period when it wants a reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def measure(agents: int, rounds: int) -> list[tuple[str, int, int, int, float, float, float]]:
    """Per endpoint: (endpoint, devices, series, bytes, cold s, cached s, reference s)."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = migrated_engine(Path(tmp))
        clock = Clock()
        fill_rooms(engine, clock, agents, DEVICES_PER_AGENT)
        clock.advance(120)
        IncidentEngine(engine, confirm_window=60, now=clock).evaluate()
        started = time.perf_counter()
        for _ in range(rounds):
            with engine.connect() as conn:
                conn.execute(select(devices)).all()
                conn.execute(select(tickets)).all()
        reference = (time.perf_counter() - started) / rounds
        rows = []
        for endpoint, read in (("/metrics", read_summary), ("/metrics/fleet", read_fleet)):
            registry, ticks = CollectorRegistry(), Ticks()
            registry.register(StoreCollector(engine, now=clock, read=read, monotonic=ticks))
            text = generate_latest(registry)
            series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
            started = time.perf_counter()
            for _ in range(rounds):
                ticks.now += 10  # past the cache period: every scrape reads the store
                generate_latest(registry)
            cold = (time.perf_counter() - started) / rounds
            started = time.perf_counter()
            for _ in range(rounds):
                generate_latest(registry)  # within the cache period
            cached = (time.perf_counter() - started) / rounds
            rows.append((endpoint, agents * DEVICES_PER_AGENT, series, len(text), cold, cached, reference))
        engine.dispose()
        return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 25, 50, 250])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'endpoint':<15} {'devices':>8} {'series':>8} {'KiB':>7} {'scrape ms':>10} {'cached ms':>10} "
        f"{'read-all ms':>12} {'ratio':>6}"
    )
    for agents in args.agents:
        for endpoint, count, series, size, cold, cached, reference in measure(agents, args.rounds):
            print(
                f"{endpoint:<15} {count:>8} {series:>8} {size / 1024:>7.0f} {cold * 1000:>10.1f} "
                f"{cached * 1000:>10.1f} {reference * 1000:>12.2f} {cold / reference:>6.1f}"
            )


if __name__ == "__main__":
    main()
