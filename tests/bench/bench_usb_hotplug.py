"""How long from a MeetUp being unplugged to the agent saying so: hot-plug scan against interval polling.

``python -m tests.bench.bench_usb_hotplug [--trials N]``. Each trial builds the simulator's MeetUp sysfs tree,
runs the real poller with the real usb driver until the device is up, waits a random part of the poll interval
(so the unplug lands anywhere in it), unplugs both USB devices and times until the state is published. The
reference is the same driver without hot-plug (``hotplug: off``), polled every 2 s. No re-checks, so the
figure is detection plus ``settle``. Loopback only; bounded to a few seconds per trial.
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path

from agent.catalog import model
from agent.config import PollConfig
from agent.drivers.usb import UsbOptions, build
from agent.poller import Device, Poller
from simulator.usbtree import UsbTree, meetup_devices
from tests.support.reporting import Recorder

INTERVAL = 2.0


async def trial(root: Path, hotplug: str, scan_interval: float, settle: float) -> float:
    tree = UsbTree(root)
    parts = meetup_devices()
    for part in parts:
        tree.plug(part)
    meetup = model("meetup")
    options = UsbOptions(
        driver="usb",
        sysfs_root=root,
        hotplug=hotplug,
        scan_interval=scan_interval,
        settle=settle,
    )
    recorder = Recorder()
    poller = Poller(
        [Device("m", [build(options, meetup.usb, meetup.name)])],
        PollConfig(interval=INTERVAL, recheck_count=0),
        recorder,
    )
    stop = asyncio.Event()
    run = asyncio.create_task(poller.run(stop))
    while not recorder.states:
        await asyncio.sleep(0.01)
    await asyncio.sleep(random.uniform(0, INTERVAL))
    started = time.perf_counter()
    for part in parts:
        tree.unplug(part)
    while recorder.states[-1]["state"] != "down":
        await asyncio.sleep(0.005)
    took = time.perf_counter() - started
    stop.set()
    await run
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    cases = [
        ("reference: hotplug off, poll every 2 s", "off", 1.0, 0.0),
        ("hotplug scan every 0.2 s, settle 0", "scan", 0.2, 0.0),
        ("hotplug scan every 1 s, settle 0", "scan", 1.0, 0.0),
        ("hotplug scan every 0.2 s, settle 1 s", "scan", 0.2, 1.0),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, hotplug, scan_interval, settle) in enumerate(cases):
            times = []
            for n in range(args.trials):
                root = Path(tmp) / f"{index}-{n}" / "devices"
                times.append(asyncio.run(trial(root, hotplug, scan_interval, settle)))
            rows.append((label, statistics.mean(times), max(times)))
    reference = rows[0][1]
    print(f"unplug -> 'down' published, {args.trials} trials each")
    print(f"{'case':<42} {'mean s':>8} {'max s':>8} {'vs ref':>8}")
    for label, mean, worst in rows:
        print(f"{label:<42} {mean:8.2f} {worst:8.2f} {mean / reference:8.2f}")


if __name__ == "__main__":
    main()
