"""The PoE switch end to end: simulator (real snmpd), agent, Mosquitto and collector as real processes.

Disable PoE on the Rally Bar's switch port and the collector sees the Rally Bar down for the snmp reason,
then opens a Critical ticket with that evidence; a switch reboot reaches the collector as an event.
"""

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.room import DETECTION_BUDGET, Room
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Room]:
    running = Room(mosquitto, tmp_path)
    running.start()
    try:
        running.wait_device_state("rally-bar", "up", timeout=30)
        yield running
    finally:
        running.stop()


def test_poe_port_off_takes_the_rally_bar_down_and_opens_a_ticket_with_the_snmp_reason(room: Room) -> None:
    assert any(d["id"] == "poe-switch" for d in room.site["devices"]), "the simulator started no PoE switch"
    room.sim("fault", "poe-switch", "port-off")

    down = room.wait_device_state("rally-bar", "down", timeout=DETECTION_BUDGET)
    assert "port ifIndex 5 link down, PoE disabled" in down["state_reason"]
    assert down["state_reason"].startswith("snmp snmp://127.0.0.1:")

    ticket = eventually("a ticket for the Rally Bar", lambda: room.tickets("rally-bar"), DETECTION_BUDGET)[0]
    assert ticket["priority"] == "critical"
    snmp_evidence = [c for c in ticket["evidence"] if c["driver"] == "snmp"]
    assert snmp_evidence[0]["ok"] is False
    # The switch's trap woke the check, and confirmed what it read.
    assert snmp_evidence[0]["detail"].startswith(
        "port ifIndex 5 link down, PoE disabled (the switch sent linkDown"
    )
    https_evidence = [c for c in ticket["evidence"] if c["driver"] == "https"]
    assert https_evidence[0]["ok"] is True  # the admin page still answered: only the port said down

    room.sim("fault", "poe-switch", "restore")
    room.wait_device_state("rally-bar", "up", timeout=DETECTION_BUDGET)


def stored_events(room: Room, kind: str) -> list[dict[str, Any]]:
    with sqlite3.connect(room.workdir / "collector.db") as db:
        rows = db.execute("SELECT device, body FROM events WHERE type = ?", (kind,)).fetchall()
    return [{"device": device, **json.loads(body)} for device, body in rows]


def stored_uptime(room: Room) -> float:
    """The highest uptime of the Rally Bar's switch the collector has stored (telemetry of the snmp check)."""
    with sqlite3.connect(room.workdir / "collector.db") as db:
        row = db.execute(
            "SELECT max(value) FROM samples WHERE device = 'rally-bar' AND metric = 'uptime_s'"
        ).fetchone()
    return float(row[0] or 0.0)


def test_a_switch_reboot_reaches_the_collector_as_a_reboot_event(room: Room) -> None:
    status = json.loads((room.site_dir / "site.json").read_text())
    switch = next(d for d in status["devices"] if d["id"] == "poe-switch")
    assert switch["powered"]
    # The switch's uptime must grow well past the poller's slack (5 s) before a restart can show as one:
    # wait until the agent has reported such an uptime (the agent polls every second).
    eventually("the switch up for 10 s, as reported", lambda: stored_uptime(room) >= 10, 30)
    room.sim("fault", "poe-switch", "reboot")
    reboots = eventually("a reboot event in the collector", lambda: stored_events(room, "reboot"), 30)
    assert reboots[0]["device"] == "rally-bar"
    assert "restarted" in reboots[0]["reason"]
    assert reboots[0]["checks"][0]["driver"] == "snmp"
