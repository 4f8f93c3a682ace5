"""USB hot-plug and debounce: changes wake the poller at once, and a quick re-enumeration is not a fault.

Sysfs trees are built with the simulator's MeetUp (ids and interfaces from ChromiumOS ``cfm_usb_devices.py``);
event sources and clocks are fakes, so nothing here waits on real time.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent.catalog import model
from agent.config import PollConfig
from agent.drivers.base import CheckResult
from agent.drivers.usb import UsbOptions, UsbProbe, build
from agent.drivers.usb.hotplug import (
    ScanSource,
    UdevSource,
    UsbEvent,
    open_source,
    usb_id_from_uevent,
    watch,
)
from agent.poller import Device, Poller
from common.configfile import ConfigError
from simulator.usbtree import UsbTree, meetup_devices
from tests.support.reporting import Recorder

CAMERA, SPEAKERPHONE = meetup_devices()


class FakeSource:
    """Hands out the events a test puts in."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[UsbEvent] = asyncio.Queue()

    async def events(self) -> AsyncIterator[UsbEvent]:
        while True:
            yield await self.queue.get()


class FakeTime:
    """A clock that moves only when slept on; ``on_sleep`` lets the world change meanwhile."""

    def __init__(self, on_sleep: Callable[[float], None] = lambda _now: None) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        self.on_sleep(self.now)


def meetup_tree(tmp_path: Path) -> UsbTree:
    tree = UsbTree(tmp_path / "sysfs" / "bus" / "usb" / "devices")
    tree.plug(CAMERA)
    tree.plug(SPEAKERPHONE)
    return tree


def probe_for(tree: UsbTree, time: FakeTime, settle: float = 5.0) -> UsbProbe:
    meetup = model("meetup")
    options = UsbOptions(driver="usb", sysfs_root=tree.devices_dir, settle=settle, hotplug="off")
    return UsbProbe(options, meetup.usb, meetup.name, FakeSource(), sleep=time.sleep, clock=time.clock)


def test_a_function_that_returns_within_the_settle_time_is_not_missing(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    time = FakeTime(on_sleep=lambda _now: tree.plug(SPEAKERPHONE) if time.slept >= 2 else None)
    probe = probe_for(tree, time)

    async def scenario() -> CheckResult:
        assert (await probe.poll()).ok
        tree.unplug(SPEAKERPHONE)
        return await probe.poll()

    result = asyncio.run(scenario())
    assert result.ok
    assert not result.degraded
    assert result.detail.endswith("(re-enumerated within 5 s: audio 046d:0867)")
    assert result.metrics["usb.reenumerated"] == 1


def test_a_function_still_gone_after_the_settle_time_is_missing(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    time = FakeTime()
    probe = probe_for(tree, time)

    async def scenario() -> CheckResult:
        await probe.poll()
        tree.unplug(SPEAKERPHONE)
        return await probe.poll()

    result = asyncio.run(scenario())
    assert result.degraded
    assert result.detail == "MeetUp incomplete: missing audio 046d:0867"
    assert time.slept == pytest.approx(5.0)


def test_a_function_never_seen_is_missing_without_waiting(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    tree.unplug(SPEAKERPHONE)
    time = FakeTime()
    result = asyncio.run(probe_for(tree, time).poll())
    assert result.degraded
    assert time.slept == 0


def test_a_settle_time_of_zero_reports_a_vanished_function_at_once(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    time = FakeTime()
    probe = probe_for(tree, time, settle=0)

    async def scenario() -> CheckResult:
        await probe.poll()
        tree.unplug(CAMERA)
        tree.unplug(SPEAKERPHONE)
        return await probe.poll()

    result = asyncio.run(scenario())
    assert not result.ok
    assert time.slept == 0


def test_the_scan_source_reports_removals_and_additions(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    changes = iter([lambda: tree.unplug(SPEAKERPHONE), lambda: tree.plug(SPEAKERPHONE)])

    async def change_while_asleep(_seconds: float) -> None:
        next(changes)()

    async def scenario() -> list[UsbEvent]:
        events = ScanSource(tree.devices_dir, 1.0, sleep=change_while_asleep).events()
        return [await anext(events), await anext(events)]

    assert asyncio.run(scenario()) == [
        UsbEvent("remove", "046d:0867", "1-3"),
        UsbEvent("add", "046d:0867", "1-3"),
    ]


def test_watch_notifies_only_for_the_devices_functions() -> None:
    source = FakeSource()
    notified: list[str] = []

    async def scenario() -> None:
        task = asyncio.create_task(watch(source, {"046d:0867"}, lambda: notified.append("x")))
        for event in (UsbEvent("remove", "046d:c52b", "1-4"), UsbEvent("remove", "046d:0867", "1-3")):
            source.queue.put_nowait(event)
        async with asyncio.timeout(10):  # the second event's notice; the first was handled before it
            while not notified:
                await asyncio.sleep(0)
        task.cancel()

    asyncio.run(scenario())
    assert notified == ["x"]


@pytest.mark.parametrize(
    ("product", "expected"),
    [("46d/867/100", "046d:0867"), ("222a/1/0", "222a:0001"), ("junk", None), (None, None), ("zz/1/0", None)],
)
def test_the_usb_id_is_read_from_a_uevent_product(product: str | None, expected: str | None) -> None:
    assert usb_id_from_uevent({"PRODUCT": product} if product else {}) == expected


def test_hot_plug_event_wakes_the_device_before_its_interval(tmp_path: Path) -> None:
    tree = meetup_tree(tmp_path)
    source = FakeSource()
    meetup = model("meetup")
    options = UsbOptions(driver="usb", sysfs_root=tree.devices_dir, settle=0, hotplug="off")
    probe = UsbProbe(options, meetup.usb, meetup.name, source)
    device = Device("meetup", [probe])
    recorder = Recorder()
    poller = Poller([device], PollConfig(interval=3600, recheck_count=0), recorder)

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(poller.run(stop))
        while not recorder.states:
            await asyncio.sleep(0.01)
        tree.unplug(SPEAKERPHONE)
        source.queue.put_nowait(UsbEvent("remove", "046d:0867", "1-3"))
        # An hour-long interval: only the event can bring this about.
        async with asyncio.timeout(30):
            while recorder.states[-1]["state"] != "degraded":
                await asyncio.sleep(0.01)
        stop.set()
        await run

    asyncio.run(scenario())
    assert [e["to"] for e in recorder.events] == ["up", "degraded"]


def test_udev_on_a_tree_other_than_sys_is_a_config_error(tmp_path: Path) -> None:
    meetup = model("meetup")
    options = UsbOptions(driver="usb", sysfs_root=tmp_path, hotplug="udev")
    with pytest.raises(ConfigError, match="hotplug: udev: udev events describe /sys/bus/usb/devices"):
        build(options, meetup.usb, meetup.name)


def test_auto_scans_a_tree_other_than_sys(tmp_path: Path) -> None:
    assert isinstance(open_source("auto", tmp_path, 2.0), ScanSource)
    assert open_source("off", tmp_path, 2.0) is None


class FakeUdevDevice:
    def __init__(self, action: str, product: str, sys_name: str) -> None:
        self.action = action
        self.properties = {"PRODUCT": product}
        self.sys_name = sys_name


class FakeMonitor:
    """pyudev's Monitor as UdevSource uses it: a readable descriptor and ``poll(timeout=0)``."""

    def __init__(self) -> None:
        import socket

        self.reader, self.writer = socket.socketpair()
        self.pending: list[FakeUdevDevice] = []
        self.started = False

    def start(self) -> None:
        self.started = True

    def fileno(self) -> int:
        return self.reader.fileno()

    def poll(self, timeout: float) -> FakeUdevDevice | None:
        if not self.pending:
            return None
        self.reader.recv(1)
        return self.pending.pop(0)

    def send(self, device: FakeUdevDevice) -> None:
        self.pending.append(device)
        self.writer.send(b"x")


def test_udev_events_are_read_on_the_event_loop_as_usb_events() -> None:
    monitor = FakeMonitor()
    source = UdevSource(monitor)

    async def scenario() -> list[UsbEvent]:
        events = source.events()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        monitor.send(FakeUdevDevice("remove", "46d/867/100", "1-3"))
        monitor.send(FakeUdevDevice("add", "46d/867/100", "1-3"))
        got = [await first, await anext(events)]
        await events.aclose()
        return got

    try:
        assert asyncio.run(scenario()) == [
            UsbEvent("remove", "046d:0867", "1-3"),
            UsbEvent("add", "046d:0867", "1-3"),
        ]
        assert monitor.started
    finally:
        monitor.reader.close()
        monitor.writer.close()


class BrokenWatch:
    """A probe whose change watch dies at once; its device must still be polled on the interval."""

    driver = "broken-watch"
    target = "t"

    def __init__(self) -> None:
        self.polls = 0

    async def poll(self) -> CheckResult:
        self.polls += 1
        return CheckResult(self.driver, self.target, True, "alive")

    async def watch(self, notify: Callable[[], None]) -> None:
        raise RuntimeError("netlink went away")


def test_a_watch_that_fails_leaves_the_device_polled_on_its_interval() -> None:
    probe = BrokenWatch()
    poller = Poller([Device("d", [probe])], PollConfig(interval=0.01, recheck_count=0), Recorder())

    async def scenario() -> None:
        stop = asyncio.Event()
        run = asyncio.create_task(poller.run(stop))
        async with asyncio.timeout(30):
            while probe.polls < 3:
                await asyncio.sleep(0.01)
        stop.set()
        await run

    asyncio.run(scenario())
    assert probe.polls >= 3
