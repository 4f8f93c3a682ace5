"""Dead and misconfigured targets of every driver are data with a reason, and the others keep being polled.

One poller, real drivers, real peers: a live TLS server and a healthy PC, next to an admin page nobody serves,
a pinged peer whose link is down, a USB tree that does not exist and a PC check missing its room software.
"""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.catalog import model
from agent.config import PollConfig
from agent.drivers import build_probe
from agent.drivers.base import CheckResult
from agent.drivers.host import HostOptions
from agent.drivers.https import HttpsOptions
from agent.drivers.icmp import IcmpOptions, available_methods
from agent.drivers.usb import UsbOptions
from agent.poller import Device, Poller
from tests.support.mosquitto import free_port
from tests.support.netns import Netns, require_netns
from tests.support.reporting import Recorder
from tests.support.tlscert import make_cert, tls_server

pytestmark = pytest.mark.integration


class Counted:
    """A probe that counts its polls, so the test can see a healthy device polled round after round."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.driver = inner.driver
        self.target = inner.target
        self.polls = 0

    async def poll(self) -> CheckResult:
        self.polls += 1
        result: CheckResult = await self.inner.poll()
        return result


def test_every_dead_target_is_a_reason_and_the_healthy_devices_keep_being_polled(tmp_path: Path) -> None:
    require_netns()
    if "raw" not in available_methods():
        pytest.skip("raw ICMP sockets need root or CAP_NET_RAW")
    files = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=timedelta(days=100))
    recorder = Recorder()
    judged: dict[str, Device] = {}

    async def scenario(peer: Netns) -> tuple[Counted, Counted]:
        async with tls_server(files) as url:
            live_page = Counted(build_probe(HttpsOptions(driver="https", url=url), model("rally-bar")))
            live_pc = Counted(
                build_probe(
                    HostOptions(driver="host", cpu_sample=0.05, disk_pct=100, memory_pct=100),
                    model("room-pc"),
                )
            )
            dead_page = HttpsOptions(driver="https", url=f"https://127.0.0.1:{free_port()}/", timeout=2)
            dead_ping = IcmpOptions(driver="icmp", host=peer.peer_address, count=1, timeout=0.5, method="raw")
            no_tree = UsbOptions(driver="usb", sysfs_root=tmp_path / "no-such-sysfs", hotplug="off")
            no_app = HostOptions(driver="host", cpu_sample=0.05, processes=["hezo-absent-room-app"])
            devices = [
                Device("live-bar", [live_page]),
                Device("live-pc", [live_pc]),
                Device("dead-bar", [build_probe(dead_page, model("rally-bar"))]),
                Device("dead-tap", [build_probe(dead_ping, model("tap-ip"))]),
                Device("gone-meetup", [build_probe(no_tree, model("meetup"))]),
                Device("pc-without-app", [build_probe(no_app, model("room-pc"))]),
            ]
            judged.update({device.id: device for device in devices})
            poller = Poller(devices, PollConfig(interval=0.3, recheck_count=1, recheck_delay=0.1), recorder)
            stop = asyncio.Event()
            run = asyncio.create_task(poller.run(stop))
            async with asyncio.timeout(60):
                while min(live_page.polls, live_pc.polls) < 4 or any(
                    d.state.reason == "not checked yet" for d in devices
                ):
                    await asyncio.sleep(0.05)
            stop.set()
            await run
            return live_page, live_pc

    with Netns() as peer:
        peer.down()
        asyncio.run(scenario(peer))

    states = latest(recorder)
    assert states["live-bar"]["state"] == "up"
    assert states["live-pc"]["state"] == "up"
    assert states["dead-bar"]["state"] == "down"
    assert states["dead-bar"]["reason"].endswith(": connection refused")
    assert states["dead-tap"]["state"] == "down"
    assert states["dead-tap"]["reason"].endswith(": no reply to 1 echo requests")
    # This PC's sysfs unreadable says nothing of the MeetUp: it cannot be told, so it is not down.
    assert judged["gone-meetup"].state.state == "unknown"
    assert f"cannot tell: cannot read {tmp_path / 'no-such-sysfs'}" in judged["gone-meetup"].state.reason
    assert states["pc-without-app"]["state"] == "degraded"
    assert states["pc-without-app"]["reason"].endswith("not running: process hezo-absent-room-app")


def latest(recorder: Recorder) -> dict[str, dict[str, Any]]:
    return {state["device"]: state for state in recorder.states}
