"""The collector's ingest and incident engine at fleet scale, in process, on PostgreSQL.

Run: python -m tests.bench.bench_engine [--devices 10000 100000] [--rounds 5]

For each fleet size, in a schema of its own on the local PostgreSQL (127.0.0.1:5432, database ``test``;
``HEZO_TEST_POSTGRES`` overrides), dropped at the end:

- storm: every agent (10 devices each) reconnects at once: its birth, then a state of each device, stored
  in batches of the writer's size; messages per second and the time to drain them all;
- tick: engine time per evaluation while 0.1 % of the devices change state between evaluations;
- dying: 1 % of the devices go down at once; after the confirm window, the engine time until every one of
  their Critical tickets is open, and how many evaluations that took.

Beside each figure: a reference measured in the same run (a plain read of every device row, the least an
evaluation that reads the fleet must do; a plain multi-row insert of the storm's rows into a scratch table),
and the figures of the code before the incident queue and set-based ingest (``BEFORE``, measured with this
same program on the same machine; see docs/collector.md).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text

from collector.incidents.engine import IncidentEngine
from collector.ingest.pipeline import Ingest
from collector.ingest.writer import BATCH_SIZE
from collector.metrics import Metrics
from collector.store.schema import CAUSE_DEVICE_DOWN, devices, tickets
from tests.support.collector import RALLY_BAR, Clock, FakeAgent
from tests.support.postgres import postgres_schema

DEVICES_PER_AGENT = 10
CONFIRM = 60.0

#: The figures of the code before the incident queue and set-based ingest (per fleet size: storm msg/s, tick
#: ms, dying s), measured with this program (``--devices 10000 100000 --rounds 3``) run against that code
#: (commit 6ab8165) on the same 2 shared cores, the same day; its read-all references were 359 and 3,586 ms.
BEFORE: dict[int, tuple[float, float, float]] = {
    10_000: (271.0, 736.2, 1.14),
    100_000: (123.0, 6152.3, 12.28),
}


@dataclass
class Figures:
    devices: int
    storm_rate: float  # messages per second
    storm_seconds: float
    insert_rate: float  # the reference: plain rows per second
    tick_ms: float
    read_all_ms: float
    dying_seconds: float
    dying_evaluations: int
    dying_tickets: int


def fleet(agents: int) -> list[FakeAgent]:
    return [
        FakeAgent(
            site=f"site-{n // 50:04d}",
            agent=f"pc-{n:05d}",
            devices=[{**RALLY_BAR, "id": f"d{i}", "serial": f"S{n}-{i}"} for i in range(DEVICES_PER_AGENT)],
        )
        for n in range(agents)
    ]


def storm(engine: Engine, ingest: Ingest, agents: list[FakeAgent], clock: Clock) -> tuple[float, int]:
    """Every agent's birth, then every device's state; the seconds to store them all, and how many."""
    now = clock()
    messages = [(*agent.birth(at=now), now, False) for agent in agents]
    for agent in agents:
        for i in range(DEVICES_PER_AGENT):
            messages.append((*agent.state("up", at=now, device=f"d{i}"), now, False))
    started = time.perf_counter()
    for start in range(0, len(messages), BATCH_SIZE):
        ingest.handle_batch(messages[start : start + BATCH_SIZE])
    return time.perf_counter() - started, len(messages)


def plain_insert_rate(engine: Engine, rows: int) -> float:
    """Rows per second of a plain multi-row insert of device-like rows: the least storing a storm costs."""
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE scratch (site text, agent text, device text, state text, at timestamptz)")
        )
    values = [{"s": "site", "a": f"pc-{n // 10}", "d": f"d{n % 10}", "st": "up"} for n in range(rows)]
    started = time.perf_counter()
    for start in range(0, rows, BATCH_SIZE):
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO scratch VALUES (:s, :a, :d, :st, now())"),
                values[start : start + BATCH_SIZE],
            )
    return rows / (time.perf_counter() - started)


def tick(
    ingest: Ingest, incidents: IncidentEngine, agents: list[FakeAgent], clock: Clock, rounds: int
) -> float:
    """Mean engine seconds per evaluation, 0.1 % of the devices changing state between evaluations."""
    changing = max(1, len(agents) * DEVICES_PER_AGENT // 1000)
    spent = 0.0
    for round_ in range(rounds):
        clock.advance(1)
        state = "degraded" if round_ % 2 == 0 else "up"
        batch = []
        for n in range(changing):
            agent = agents[(n * 7919 + round_) % len(agents)]
            batch.append(
                (*agent.state(state, at=clock(), device=f"d{n % DEVICES_PER_AGENT}"), clock(), False)
            )
        ingest.handle_batch(batch)
        started = time.perf_counter()
        incidents.evaluate()
        spent += time.perf_counter() - started
    return spent / rounds


def read_all(engine: Engine, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        with engine.connect() as conn:
            conn.execute(select(devices)).all()
    return (time.perf_counter() - started) / rounds


def dying(
    engine: Engine, ingest: Ingest, incidents: IncidentEngine, agents: list[FakeAgent], clock: Clock
) -> tuple[float, int, int]:
    """1 % of the devices down at once; engine seconds until all their tickets are open, and evaluations."""
    count = max(1, len(agents) * DEVICES_PER_AGENT // 100)
    down = [(agents[n % len(agents)], f"d{(n // len(agents)) % DEVICES_PER_AGENT}") for n in range(count)]
    clock.advance(1)
    messages = [(*agent.state("down", at=clock(), device=name), clock(), False) for agent, name in down]
    for start in range(0, len(messages), BATCH_SIZE):
        ingest.handle_batch(messages[start : start + BATCH_SIZE])
    incidents.evaluate()
    clock.advance(CONFIRM)
    query = select(func.count()).select_from(tickets).where(tickets.c.cause == CAUSE_DEVICE_DOWN)
    spent, evaluations = 0.0, 0
    while True:
        started = time.perf_counter()
        incidents.evaluate()
        spent += time.perf_counter() - started
        evaluations += 1
        with engine.connect() as conn:
            opened = int(conn.execute(query).scalar_one())
        if opened >= count or evaluations >= 100:
            return spent, evaluations, opened
        clock.advance(1)


def measure(total: int, rounds: int) -> Figures:
    agents = fleet(total // DEVICES_PER_AGENT)
    clock = Clock()
    with postgres_schema() as engine:
        ingest = Ingest(engine, Metrics(), "hezo/v1")
        seconds, messages = storm(engine, ingest, agents, clock)
        insert_rate = plain_insert_rate(engine, messages)
        incidents = IncidentEngine(engine, confirm_window=CONFIRM, now=clock)
        clock.advance(1)
        incidents.evaluate()  # the storm's devices, once (an engine with a queue: until it is drained)
        while getattr(incidents.last, "looked_at", 0) > 0:
            incidents.evaluate()
        tick_seconds = tick(ingest, incidents, agents, clock, rounds)
        reference = read_all(engine, rounds)
        dying_seconds, evaluations, opened = dying(engine, ingest, incidents, agents, clock)
    return Figures(
        total,
        messages / seconds,
        seconds,
        insert_rate,
        tick_seconds * 1000,
        reference * 1000,
        dying_seconds,
        evaluations,
        opened,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"{'devices':>8} | {'storm msg/s':>11} {'drain s':>8} {'insert/s':>9} {'before':>7} | "
        f"{'tick ms':>8} {'read-all ms':>11} {'before':>7} | {'dying s':>8} {'evals':>5} {'tickets':>7} "
        f"{'before':>7}"
    )
    for total in args.devices:
        f = measure(total, args.rounds)
        before = BEFORE.get(total)
        b_storm, b_tick, b_dying = (f"{v:>7.1f}" for v in before) if before else ("      -",) * 3
        print(
            f"{f.devices:>8} | {f.storm_rate:>11.0f} {f.storm_seconds:>8.1f} {f.insert_rate:>9.0f} "
            f"{b_storm} | "
            f"{f.tick_ms:>8.1f} {f.read_all_ms:>11.1f} {b_tick} | {f.dying_seconds:>8.2f} "
            f"{f.dying_evaluations:>5} {f.dying_tickets:>7} {b_dying}",
            flush=True,
        )


if __name__ == "__main__":
    main()
