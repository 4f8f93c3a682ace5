"""How long one incident evaluation takes, by number of devices (SQLite in a temporary directory).

Run: python -m tests.bench.bench_incidents [--agents 5 25 50] [--rounds 10]

Each agent has 20 devices, one in five down (so a Critical ticket each, with SLA deadlines to refresh).
The reference is one plain read of every device row, the least any evaluation must do.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from collector.incidents.engine import IncidentEngine
from collector.store.schema import devices
from tests.support.collector import Clock, fill_rooms, migrated_engine

DEVICES_PER_AGENT = 20


def measure(agents: int, rounds: int) -> tuple[int, int, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = migrated_engine(Path(tmp))
        clock = Clock()
        fill_rooms(engine, clock, agents, DEVICES_PER_AGENT)
        clock.advance(120)
        incidents = IncidentEngine(engine, confirm_window=60, now=clock)
        tickets = len(incidents.evaluate())
        started = time.perf_counter()
        for _ in range(rounds):
            clock.advance(1)
            incidents.evaluate()
        evaluation = (time.perf_counter() - started) / rounds
        started = time.perf_counter()
        for _ in range(rounds):
            with engine.connect() as conn:
                conn.execute(select(devices)).all()
        reference = (time.perf_counter() - started) / rounds
        engine.dispose()
        return agents * DEVICES_PER_AGENT, tickets, evaluation, reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[5, 25, 50])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(f"{'devices':>8} {'tickets':>8} {'evaluation ms':>14} {'read-all ms':>12} {'ratio':>7}")
    for agents in args.agents:
        count, tickets, evaluation, reference = measure(agents, args.rounds)
        print(
            f"{count:>8} {tickets:>8} {evaluation * 1000:>14.1f} {reference * 1000:>12.2f} "
            f"{evaluation / reference:>7.1f}"
        )


if __name__ == "__main__":
    main()
