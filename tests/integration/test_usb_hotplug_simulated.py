"""Through the real simulator process: an unplugged MeetUp is seen within seconds, not at the next poll an
hour later, and a MeetUp that re-enumerates quickly is not reported at all."""

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.catalog import model
from agent.config import PollConfig
from agent.drivers.usb import UsbOptions, build
from agent.poller import Device, Poller
from tests.support.reporting import Recorder
from tests.support.simulator import control, simulator_process

pytestmark = pytest.mark.integration

HOUR = 3600.0


async def until(what: str, condition: Callable[[], bool], timeout: float = 30.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {timeout} s") from None


def meetup_poller(site: dict[str, Any], recorder: Recorder, settle: float) -> Poller:
    meetup = model("meetup")
    options = UsbOptions(
        driver="usb", sysfs_root=site["sysfs_root"], hotplug="scan", scan_interval=0.2, settle=settle
    )
    device = Device("meetup", [build(options, meetup.usb, meetup.name)])
    return Poller([device], PollConfig(interval=HOUR, recheck_count=1, recheck_delay=0.5), recorder)


def post(site: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    status, answer = control(site["control_url"], "POST", path, json.dumps(body).encode())
    assert status == 200, answer


def test_an_unplugged_meetup_is_down_within_seconds_not_at_the_next_interval(tmp_path: Path) -> None:
    recorder = Recorder()

    async def scenario(site: dict[str, Any]) -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(meetup_poller(site, recorder, settle=1.0).run(stop))
        await until("the MeetUp up", lambda: bool(recorder.states) and recorder.states[-1]["state"] == "up")
        await asyncio.to_thread(post, site, "/devices/meetup/power", {"on": False})
        await until("the MeetUp down", lambda: recorder.states[-1]["state"] == "down")
        stop.set()
        await run

    with simulator_process(tmp_path / "site") as site:
        asyncio.run(scenario(site))
    assert [e["to"] for e in recorder.events if e["type"] == "state-changed"] == ["up", "down"]
    assert "MeetUp not on the USB bus" in recorder.states[-1]["reason"]


def test_a_meetup_that_reenumerates_within_the_settle_time_stays_up(tmp_path: Path) -> None:
    recorder = Recorder()

    def reenumerated() -> bool:
        return any(s["metric"] == "usb.reenumerated" and s["value"] >= 1 for s in recorder.samples)

    async def scenario(site: dict[str, Any]) -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(meetup_poller(site, recorder, settle=10.0).run(stop))
        await until("the MeetUp up", lambda: bool(recorder.states) and recorder.states[-1]["state"] == "up")
        await asyncio.to_thread(post, site, "/devices/meetup/fault", {"name": "reenumerate", "seconds": 1.5})
        await until("the re-enumeration noticed and ridden out", reenumerated)
        stop.set()
        await run

    with simulator_process(tmp_path / "site") as site:
        asyncio.run(scenario(site))
    assert [e["to"] for e in recorder.events if e["type"] == "state-changed"] == ["up"]
