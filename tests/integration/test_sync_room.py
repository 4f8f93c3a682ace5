"""Through the whole system: a device seen only through Logitech Sync loses a mic pod; the collector says so.

Simulator (with its fake Sync Cloud API), agent and collector run as real processes on a real Mosquitto.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.room import Room

pytestmark = pytest.mark.integration

# The agent polls every second but fetches the place list at most every 6 s (14,400 requests a day), and the
# fault must then travel agent -> broker -> collector: generous on a loaded machine.
SYNC_BUDGET = 45.0


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Room]:
    running = Room(mosquitto, tmp_path)
    running.start()
    try:
        running.wait_device_state("rally", "up", timeout=SYNC_BUDGET)
        yield running
    finally:
        running.stop()


def test_a_lost_mic_pod_reported_by_sync_makes_the_rally_degraded_with_the_reason(room: Room) -> None:
    room.sim("fault", "rally", "mic-pod-lost")
    device = room.wait_device_state("rally", "degraded", timeout=SYNC_BUDGET)
    assert "sync 2210FDZ2AB78: Sync health Warning; 1 of 2 mic pods" in device["state_reason"]
    room.sim("fault", "rally", "restore")
    room.wait_device_state("rally", "up", timeout=SYNC_BUDGET)
    assert "fetching the place list every 6 s instead of every 1 s" in room.log("agent")
