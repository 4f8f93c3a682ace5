"""The shipped settings, end to end (simulator, agent, Mosquitto, collector as real processes, nothing tuned):
a dead Rally Bar is ticketed Critical within 30 s, and a device that flaps or drops for a few seconds gets
no Critical ticket. ``python -m tests.bench.bench_detect`` measures the same over many runs."""

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from collector.config import IncidentsConfig
from tests.support.mosquitto import Mosquitto
from tests.support.room import Room
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

CONFIRM_WINDOW = IncidentsConfig().confirm_window


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Room]:
    running = Room(mosquitto, tmp_path, shipped=True)
    running.start()
    try:
        running.wait_device_state("rally-bar", "up", timeout=60)
        yield running
    finally:
        running.stop()


def test_a_dead_rally_bar_is_ticketed_critical_within_30_s(room: Room) -> None:
    off = time.time()
    room.control("rally-bar", on=False)
    ticket = eventually("a ticket for the Rally Bar", lambda: room.tickets("rally-bar"), timeout=90)[0]
    assert (ticket["priority"], ticket["cause"]) == ("critical", "device-down")
    opened = datetime.fromisoformat(ticket["opened_at"]).timestamp()
    assert opened - off <= 30.0, f"ticketed {opened - off:.1f} s after the power went off"


def test_a_flapping_rally_bar_and_a_short_drop_open_no_critical_ticket(room: Room) -> None:
    for _ in range(4):  # each drop as long as it takes the agent to see it go and come back
        room.control("rally-bar", on=False)
        room.wait_device_state("rally-bar", "down", timeout=30)
        room.control("rally-bar", on=True)
        room.wait_device_state("rally-bar", "up", timeout=30)
    room.control("rally-bar", on=False)  # a drop of 8 s, about half the confirm window
    room.wait_device_state("rally-bar", "down", timeout=30)
    time.sleep(8.0)  # how long the fault lasts
    room.control("rally-bar", on=True)
    room.wait_device_state("rally-bar", "up", timeout=30)
    room.wait_evaluations(CONFIRM_WINDOW + 2)  # whatever the confirm window would open, it has by now
    causes = sorted((t["cause"], t["priority"]) for t in room.tickets("rally-bar"))
    assert causes == [("device-unstable", "high")]  # the flapping, judged by a person; no Critical
