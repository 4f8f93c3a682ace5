"""The spine, end to end: a simulated room, the agent, a real Mosquitto and the collector, as real processes.

Pull the plug on a device and a Critical ticket with its serial, contract and deadline appears; put it back
and the ticket records the recovery; kill the agent and no ticket is opened for the devices behind it.
"""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto
from tests.support.room import CONFIRM_WINDOW, CONTRACT, DETECTION_BUDGET, EVALUATE_EVERY, Room
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.fixture
def room(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Room]:
    running = Room(mosquitto, tmp_path)
    running.start()
    try:
        running.wait_device_state("rally-bar", "up")
        running.wait_device_state("meetup", "up")
        yield running
    finally:
        running.stop()


def pull_plug_and_wait_for_ticket(room: Room, device: str) -> tuple[dict, float]:  # type: ignore[type-arg]
    powered_off = time.monotonic()
    room.power(device, on=False)
    tickets = eventually(f"a ticket for {device}", lambda: room.tickets(device), timeout=DETECTION_BUDGET)
    elapsed = time.monotonic() - powered_off
    print(f"\n{device}: power-off to ticket {elapsed:.2f} s (confirm window {CONFIRM_WINDOW:g} s)")
    assert len(tickets) == 1
    return tickets[0], elapsed


def test_rally_bar_power_off_opens_a_critical_ticket_and_power_on_records_recovery(room: Room) -> None:
    ticket, elapsed = pull_plug_and_wait_for_ticket(room, "rally-bar")
    rally_bar = next(d for d in room.site["devices"] if d["id"] == "rally-bar")

    assert ticket["priority"] == "critical"
    assert ticket["status"] == "open"
    assert ticket["serial"] == rally_bar["serial"] == "2034FH1002R2"
    assert ticket["contract"] == CONTRACT
    assert ticket["model"] == "rally-bar"
    assert ticket["site"] == "test-site"
    assert moment(ticket["response_due"]) - moment(ticket["opened_at"]) == timedelta(hours=1)
    assert ticket["evidence"][0]["driver"] == "https"
    assert ticket["evidence"][0]["detail"] == "connection refused"
    assert elapsed >= CONFIRM_WINDOW  # not opened before the fault was confirmed

    room.power("rally-bar", on=True)
    recovered = eventually(
        "the ticket records the recovery",
        lambda: [t for t in room.tickets("rally-bar") if t["status"] == "recovered"],
        timeout=DETECTION_BUDGET,
    )[0]
    assert recovered["number"] == ticket["number"]
    assert recovered["recovered_at"] is not None
    assert [e["kind"] for e in recovered["entries"]] == ["opened", "recovered"]


def test_meetup_vanishing_from_usb_opens_a_critical_ticket(room: Room) -> None:
    ticket, _ = pull_plug_and_wait_for_ticket(room, "meetup")
    meetup = next(d for d in room.site["devices"] if d["id"] == "meetup")

    assert ticket["priority"] == "critical"
    assert ticket["serial"] == meetup["serial"]
    assert ticket["contract"] == CONTRACT
    assert ticket["evidence"][0]["driver"] == "usb"
    assert "MeetUp not on the USB bus" in ticket["evidence"][0]["detail"]

    room.power("meetup", on=True)
    eventually(
        "the MeetUp ticket records the recovery",
        lambda: [t for t in room.tickets("meetup") if t["status"] == "recovered"],
        timeout=DETECTION_BUDGET,
    )


def test_a_killed_agent_is_seen_offline_and_its_down_device_gets_no_ticket(room: Room) -> None:
    room.power("rally-bar", on=False)
    room.wait_device_state("rally-bar", "down")  # the collector knows; the confirm window is running
    room.kill("agent")  # SIGKILL: no goodbye, only the MQTT will

    eventually("the collector sees the agent offline", lambda: room.agent_online() is False, timeout=10)
    # Evaluations past the confirm window and then some: a device behind a dead agent is not confirmed.
    room.wait_evaluations(CONFIRM_WINDOW + 4 * EVALUATE_EVERY)
    assert room.tickets() == []
    assert "Traceback" not in room.log("collector")

    # When the agent comes back and still sees the device down, the ticket opens.
    room.start_agent()
    eventually("the agent is back online", lambda: room.agent_online() is True, timeout=10)
    ticket = eventually(
        "a ticket once the agent is back", lambda: room.tickets("rally-bar"), DETECTION_BUDGET
    )[0]
    assert ticket["serial"] == "2034FH1002R2"


def test_a_device_repaired_while_its_agent_was_dead_gets_no_ticket_when_the_agent_returns(room: Room) -> None:
    room.power("rally-bar", on=False)
    room.wait_device_state("rally-bar", "down")
    room.kill("agent")
    eventually("the collector sees the agent offline", lambda: room.agent_online() is False, timeout=10)
    room.power("rally-bar", on=True)  # repaired on site while the room PC was off
    # Its admin page now takes 2 s to answer, so the restarted agent's first report comes well after its
    # birth: time enough for the collector to ticket the previous boot's stale 'down', were it to trust it.
    room.sim("fault", "rally-bar", "slow", "--seconds", "2")
    room.wait_evaluations(CONFIRM_WINDOW)  # the stale 'down' is now older than the confirm window

    room.start_agent()
    eventually("the agent is back online", lambda: room.agent_online() is True, timeout=10)
    room.wait_device_state("rally-bar", "up")
    assert room.tickets() == []
