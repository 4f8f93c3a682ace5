"""The agent's usb checks of one sysfs tree share its scans and hot-plug source; each still sees its own.

Two MeetUps on one PC, told apart by serial, as the agent checks them (``build_probe`` with one context).
"""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.catalog import model
from agent.drivers import ProbeContext, SharedResources, build_probe
from agent.drivers.usb import UsbOptions, UsbProbe
from agent.drivers.usb import sysfs as sysfs_module
from agent.drivers.usb.hotplug import SharedSource, UsbEvent
from agent.drivers.usb.sysfs import SharedScan, UsbDevice
from simulator.usbtree import UsbTree, meetup_devices

FIRST, SECOND = "2041MU0000A1", "2041MU0000B2"


def two_meetups(tmp_path: Path) -> UsbTree:
    tree = UsbTree(tmp_path / "sysfs" / "bus" / "usb" / "devices")
    for serial, bus in ((FIRST, 1), (SECOND, 2)):
        for part in meetup_devices(serial, bus):
            tree.plug(part)
    return tree


def probes(tree: UsbTree, shared: SharedResources) -> list[UsbProbe]:
    built = []
    for device, serial in (("room-a", FIRST), ("room-b", SECOND)):
        options = UsbOptions(
            driver="usb",
            sysfs_root=tree.devices_dir,
            serial=serial,
            hotplug="scan",
            scan_interval=0.05,
            settle=0,
        )
        probe = build_probe(options, model("meetup"), ProbeContext(device, serial, shared))
        assert isinstance(probe, UsbProbe)
        built.append(probe)
    return built


def counting_scans(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    scanned: list[Path] = []
    real = sysfs_module.scan

    def scan(root: Path) -> list[UsbDevice]:
        scanned.append(root)
        return real(root)

    monkeypatch.setattr(sysfs_module, "scan", scan)
    return scanned


def test_devices_checked_at_once_read_the_tree_once_and_each_sees_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = two_meetups(tmp_path)
    tree.unplug(meetup_devices(SECOND, 2)[1])  # room-b's speakerphone is gone
    scanned = counting_scans(monkeypatch)
    first, second = probes(tree, SharedResources())

    async def round_of_polls() -> list[bool]:
        results = await asyncio.gather(first.poll(), second.poll())
        return [result.degraded for result in results]

    assert asyncio.run(round_of_polls()) == [False, True]
    assert scanned == [tree.devices_dir]


def test_one_hot_plug_scan_wakes_every_device_of_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = two_meetups(tmp_path)
    scanned = counting_scans(monkeypatch)
    first, second = probes(tree, SharedResources())
    assert first.source is second.source
    woken: list[str] = []

    async def scenario() -> None:
        watches = [
            asyncio.create_task(probe.watch(lambda name=name: woken.append(name)))
            for name, probe in (("room-a", first), ("room-b", second))
        ]
        async with asyncio.timeout(30):  # both watching, from the first reading of the tree on
            while len(scanned) < 2:
                await asyncio.sleep(0.01)
        tree.unplug(meetup_devices(FIRST, 1)[0])
        tree.unplug(meetup_devices(SECOND, 2)[0])
        async with asyncio.timeout(30):
            while sorted(set(woken)) != ["room-a", "room-b"]:
                await asyncio.sleep(0.05)
        for task in watches:
            task.cancel()

    asyncio.run(scenario())


class Failing:
    """A source whose reading fails after one event."""

    def __init__(self) -> None:
        self.opened = 0

    async def events(self) -> AsyncIterator[UsbEvent]:
        self.opened += 1
        yield UsbEvent("add", "046d:0866", "1-2")
        raise OSError("netlink went away")


def test_a_shared_source_failing_ends_every_watcher_with_its_error_and_is_read_anew_after() -> None:
    source = Failing()
    shared = SharedSource(source)

    async def one_watcher(seen: list[str]) -> None:
        async for event in shared.events():
            seen.append(event.path)

    async def scenario() -> list[list[str]]:
        seen: list[list[str]] = [[], []]
        ended = await asyncio.gather(*(one_watcher(each) for each in seen), return_exceptions=True)
        assert [str(error) for error in ended] == ["netlink went away"] * 2
        return seen

    assert asyncio.run(scenario()) == [["1-2"], ["1-2"]]
    assert source.opened == 1
    assert asyncio.run(scenario()) == [["1-2"], ["1-2"]]
    assert source.opened == 2


def test_a_scan_that_fails_fails_for_every_caller(tmp_path: Path) -> None:
    scans = SharedScan(tmp_path / "missing")

    async def two_reads() -> list[BaseException | list[UsbDevice]]:
        return list(await asyncio.gather(scans.read(), scans.read(), return_exceptions=True))

    assert all(isinstance(outcome, FileNotFoundError) for outcome in asyncio.run(two_reads()))
