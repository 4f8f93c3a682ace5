"""The ticket board's server time and page weight with a large store (SQLite in a temporary directory).

Run: python -m tests.bench.bench_board [--tickets 10000] [--devices 100000] [--rounds 5]

The store holds ``--devices`` devices (100 per agent) and ``--tickets`` tickets on them, seven in ten open,
each with its opening entry; one customer owns a tenth of the devices. Each page is asked for through the
web app in this process (no socket), as an admin; the figures are the median of ``--rounds``. The reference
is the JSON list of every ticket (``GET /api/tickets``), measured in the same run on the same store.
Targets: under 300 ms and under 500 KB for the board.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.registry import contracts
from collector.store.schema import CAUSE_DEVICE_DOWN, agents, devices, ticket_entries, tickets
from tests.support.collector import T0, AppClient, Clock, migrated_engine

DEVICES_PER_AGENT = 100
TARGET_MS = 300.0
TARGET_KB = 500.0
CUSTOMER = "Bench Customer"


def fill(engine: Engine, device_count: int, ticket_count: int) -> None:
    """``device_count`` devices and ``ticket_count`` tickets, written in a few large transactions."""
    agent_count = max(1, device_count // DEVICES_PER_AGENT)
    with engine.begin() as conn:
        conn.execute(
            insert(agents),
            [{"site": f"site-{n % 200}", "agent": f"pc-{n}", "online": True} for n in range(agent_count)],
        )
        contracts.put(conn, contracts.values(number="C-BENCH", start=T0.date(), years=3, customer=CUSTOMER))
        rows = []
        for n in range(device_count):
            agent = n // DEVICES_PER_AGENT
            rows.append(
                {
                    "site": f"site-{agent % 200}",
                    "agent": f"pc-{agent}",
                    "device": f"d{n % DEVICES_PER_AGENT}",
                    "model": "rally-bar",
                    "name": "Rally Bar",
                    "serial": f"SN{n:08d}",
                    "contract": "C-BENCH" if n % 10 == 0 else f"C-{n % 97}",
                    "state": "down" if n < ticket_count else "up",
                    "room": f"Room {n % 300}",
                }
            )
        conn.execute(insert(devices), rows)
        check = [{"driver": "https", "ok": False, "detail": "connection refused", "target": "https://x/"}]
        statuses = ("open", "open", "open", "responded", "confirmed", "open", "recovered", "closed", "closed")
        ticket_rows = []
        for n in range(ticket_count):
            device = rows[n * device_count // ticket_count]
            opened = T0 - timedelta(minutes=n % 5000)
            status = statuses[n % len(statuses)] if n % 10 != 9 else "closed"
            ticket_rows.append(
                {
                    "id": n + 1,
                    "number": f"HZ-{n + 1:06d}",
                    **{key: device[key] for key in ("site", "agent", "device", "model", "serial", "room")},
                    "contract": device["contract"],
                    "priority": ("critical", "high", "low")[n % 3],
                    "cause": CAUSE_DEVICE_DOWN if status != "closed" else f"manual:{n}",
                    "status": status,
                    "opened_at": opened,
                    "response_due": opened + timedelta(hours=1 + n % 4),
                    "update_due": opened + timedelta(hours=2) if status == "responded" else None,
                    "closed_at": opened + timedelta(hours=3) if status == "closed" else None,
                    "evidence": check,
                    "sla_state": "ok",
                }
            )
        conn.execute(insert(tickets), ticket_rows)
        conn.execute(
            insert(ticket_entries),
            [
                {
                    "ticket_id": n + 1,
                    "at": row["opened_at"],
                    "kind": "opened",
                    "text": "opened",
                    "by": "bench",
                }
                for n, row in enumerate(ticket_rows)
            ],
        )


def timed(client: AppClient, path: str, rounds: int) -> tuple[float, int]:
    """Median milliseconds of ``rounds`` GETs of ``path``, and the answer's size in bytes."""
    spent = []
    size = 0
    for _ in range(rounds):
        started = time.perf_counter()
        answer = client.get(path)
        spent.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
        size = len(answer.content)
    return statistics.median(spent), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = migrated_engine(Path(tmp))
        started = time.perf_counter()
        fill(engine, args.devices, args.tickets)
        print(
            f"store: {args.devices} devices, {args.tickets} tickets "
            f"(filled in {time.perf_counter() - started:.1f} s)"
        )
        app = create_app(engine, now=Clock(T0))
        admin = AppClient(app)
        customer = AppClient(app, role="viewer", customer=CUSTOMER)
        measured = [
            ("GET /api/tickets (reference)", *timed(admin, "/api/tickets", args.rounds)),
            ("GET /board", *timed(admin, "/board", args.rounds)),
            ("GET /board?which=all&page=50", *timed(admin, "/board?which=all&page=50", args.rounds)),
            (
                "GET /board?priority=critical&site=site-7",
                *timed(admin, "/board?priority=critical&site=site-7", args.rounds),
            ),
            ("GET /board as the customer's user", *timed(customer, "/board", args.rounds)),
        ]
        engine.dispose()
    reference_ms = measured[0][1]
    print(f"{'page':<44} {'ms':>8} {'KB':>9} {'x reference':>12}")
    for name, ms, size in measured:
        print(f"{name:<44} {ms:8.1f} {size / 1024:9.1f} {ms / reference_ms:12.2f}")
    board_ms, board_size = measured[1][1], measured[1][2]
    verdict = "met" if board_ms < TARGET_MS and board_size / 1024 < TARGET_KB else "MISSED"
    print(f"targets for /board: < {TARGET_MS:g} ms, < {TARGET_KB:g} KB: {verdict}")


if __name__ == "__main__":
    main()
