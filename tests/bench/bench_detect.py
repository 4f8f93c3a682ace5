"""Power-off to Critical ticket: the shipped settings against the old ones (the 60 s confirm window).

``python -m tests.bench.bench_detect [--runs 10] [--rooms 2] [--baseline-rooms 3] [--device rally-bar]``

Each room is a whole system as real processes (simulator, agent, a Mosquitto of its own, collector with
SQLite), as ``tests/support/room.py`` starts it. A run: wait a random part of the poll interval (so the cut
lands anywhere in it), power the device off through the simulator's control endpoint, and take the time from
just before that request to the moment the collector opened (or reopened) the device's Critical ticket, read
from the ticket's own timeline; then power it on again and wait for the ticket to be ``recovered``.

- **shipped**: every setting at its default (agent: poll 10 s, 2 re-checks 1 s apart, the switch's traps
  heard; collector: confirm window 15 s, evaluation every 1 s).
- **no traps**: the shipped settings with the agent's trap receiver off: the device is found by polling
  alone, as one without a switch check (or on a switch that sends no traps) is.
- **baseline**, in the same run: the settings shipped before (poll 30 s, 2 re-checks 2 s apart, confirm
  window 60 s, evaluation every 1 s, no trap receiver).

Rooms of one configuration run side by side, their runs counted together. Prints min, median, p95 (nearest
rank) and max per configuration, and how many runs the switch's trap woke the check. Loopback only.
"""

import argparse
import json
import math
import random
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config import PollConfig
from collector.config import IncidentsConfig
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.room import Room
from tests.support.waiting import eventually

BASELINE_POLL = {"interval": 30.0, "recheck_count": 2, "recheck_delay": 2.0}
BASELINE_INCIDENTS = {"confirm_window": 60.0, "evaluate_every": 1.0}
TICKET_KINDS = ("opened", "down-again")
#: Rooms start one at a time: seven systems starting at once on two cores miss their start-up deadlines.
STARTING = threading.Lock()


def ticket_of(room: Room, device: str) -> dict[str, Any] | None:
    found = [t for t in room.tickets(device) if t["cause"] == "device-down"]
    if not found:
        return None
    with urllib.request.urlopen(
        f"http://127.0.0.1:{room.web_port}/api/tickets/{found[0]['number']}", timeout=5
    ) as r:
        doc: dict[str, Any] = json.load(r)
    return doc


def ticketed_after(room: Room, device: str, since: float) -> float | None:
    """When the device's Critical ticket was opened or reopened after ``since`` (epoch seconds), if it was."""
    ticket = ticket_of(room, device)
    if ticket is None:
        return None
    times = [
        datetime.fromisoformat(entry["at"]).timestamp()
        for entry in ticket["entries"]
        if entry["kind"] in TICKET_KINDS
    ]
    later = [t for t in times if t >= since]
    return min(later) if later else None


def one_run(room: Room, device: str, interval: float, timeout: float) -> tuple[float, bool]:
    """Power-off to ticket, in seconds, and whether the check that saw it was woken by the switch's trap."""
    time.sleep(random.uniform(0.0, interval))  # the cut lands anywhere in the poll interval
    off = time.time()
    room.control(device, on=False)
    at = eventually(
        "the Critical ticket", lambda: ticketed_after(room, device, off), timeout=timeout, every=0.05
    )
    state = room.device(device) or {}
    trap = "(the switch sent" in str(state.get("state_reason", ""))
    room.control(device, on=True)
    eventually(
        "the ticket recovered",
        lambda: (ticket_of(room, device) or {}).get("status") == "recovered",
        timeout=timeout,
    )
    return at - off, trap


def run_room(
    workdir: Path,
    make_room: Callable[[Mosquitto, Path], Room],
    device: str,
    interval: float,
    runs: int,
    timeout: float,
    out: list[tuple[float, bool]],
    errors: list[BaseException],
) -> None:
    workdir.mkdir(parents=True)
    broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker")
    (workdir / "broker").mkdir()
    broker.start()
    room = make_room(broker, workdir / "room")
    (workdir / "room").mkdir()
    try:
        with STARTING:
            room.start()
            room.wait_device_state(device, "up", timeout=90)
        for _ in range(runs):
            out.append(one_run(room, device, interval, timeout))
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)
    finally:
        room.stop()
        broker.stop()


@dataclass
class Job:
    """One configuration measured in rooms side by side, each in a thread of its own."""

    name: str
    results: list[tuple[float, bool]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)


def measure(
    name: str,
    make_room: Callable[[Mosquitto, Path], Room],
    rooms: int,
    runs: int,
    base: Path,
    *,
    device: str,
    interval: float,
    timeout: float,
) -> Job:
    job = Job(name)
    per_room = math.ceil(runs / rooms)
    for n in range(rooms):
        thread = threading.Thread(
            target=run_room,
            args=(
                base / f"{name.replace(' ', '-')}-{n}",  # snmpd runs no helper from a path with a space
                make_room,
                device,
                interval,
                per_room,
                timeout,
                job.results,
                job.errors,
            ),
        )
        thread.start()
        job.threads.append(thread)
    return job


def summary(name: str, figures: list[float], trapped: int) -> str:
    ordered = sorted(figures)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return (
        f"{name:<10} {len(ordered):>4} {ordered[0]:>7.1f} {statistics.median(ordered):>7.1f} {p95:>7.1f} "
        f"{ordered[-1]:>7.1f} {trapped:>5}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per configuration (at least)")
    parser.add_argument("--rooms", type=int, default=2, help="rooms side by side for the shipped settings")
    parser.add_argument("--baseline-rooms", type=int, default=3, help="rooms side by side for the baseline")
    parser.add_argument("--device", default="rally-bar", choices=["rally-bar", "meetup"])
    args = parser.parse_args()
    shipped_poll, shipped_incidents = PollConfig(), IncidentsConfig()

    def shipped(broker: Mosquitto, workdir: Path) -> Room:
        return Room(broker, workdir, shipped=True)

    def no_traps(broker: Mosquitto, workdir: Path) -> Room:
        return Room(broker, workdir, shipped=True, agent_extra={"snmp": None})

    def baseline(broker: Mosquitto, workdir: Path) -> Room:
        return Room(
            broker,
            workdir,
            collector_extra={"incidents": BASELINE_INCIDENTS},
            agent_extra={"poll": BASELINE_POLL, "snmp": None},
        )

    print(
        f"shipped:  poll {shipped_poll.interval:g} s, {shipped_poll.recheck_count} re-checks "
        f"{shipped_poll.recheck_delay:g} s apart, traps heard, "
        f"confirm window {shipped_incidents.confirm_window:g} s"
    )
    print(
        f"baseline: poll {BASELINE_POLL['interval']:g} s, {BASELINE_POLL['recheck_count']} re-checks "
        f"{BASELINE_POLL['recheck_delay']:g} s apart, no traps, "
        f"confirm window {BASELINE_INCIDENTS['confirm_window']:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="hezo-bench-detect-") as temp:
        base = Path(temp)
        started = time.monotonic()
        jobs = [
            measure(
                "shipped",
                shipped,
                args.rooms,
                args.runs,
                base,
                device=args.device,
                interval=shipped_poll.interval,
                timeout=120,
            ),
            measure(
                "no traps",
                no_traps,
                args.rooms,
                args.runs,
                base,
                device=args.device,
                interval=shipped_poll.interval,
                timeout=120,
            ),
            measure(
                "baseline",
                baseline,
                args.baseline_rooms,
                args.runs,
                base,
                device=args.device,
                interval=BASELINE_POLL["interval"],
                timeout=240,
            ),
        ]
        for job in jobs:
            for thread in job.threads:
                thread.join()
        print(
            f"\n{args.device}: power off -> Critical ticket, seconds "
            f"({time.monotonic() - started:.0f} s wall)"
        )
        print(f"{'settings':<10} {'runs':>4} {'min':>7} {'median':>7} {'p95':>7} {'max':>7} {'trap':>5}")
        for job in jobs:
            if job.results:
                print(summary(job.name, [r[0] for r in job.results], sum(1 for r in job.results if r[1])))
            if job.errors:
                print(f"{job.name}: {len(job.errors)} room(s) failed: {job.errors[0]!r}")
        if jobs[0].results:
            ordered = sorted(r[0] for r in jobs[0].results)
            p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
            print(f"\nshipped p95 {p95:.1f} s: {'within' if p95 <= 30 else 'OVER'} the 30 s target")
        raise SystemExit(1 if any(job.errors for job in jobs) else 0)


if __name__ == "__main__":
    main()
