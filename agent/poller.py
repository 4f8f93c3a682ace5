"""Polls every device on its interval, re-checks failures before believing them, and reports changes at once.

Each device has its own task, so one slow or dead device (and its re-checks) never delays the others.
A probe that can notice changes by itself (``Watching``: the usb driver's hot-plug events) wakes its device's
task, which then checks the device at once instead of at the end of its interval.
"""

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from agent.catalog import model
from agent.changes import ChangeWatch
from agent.config import AgentConfig, DeviceConfig, PollConfig
from agent.drivers import ProbeContext, SharedResources, build_probe
from agent.drivers.base import CheckResult, Probe
from agent.state import DeviceState, Transition
from protocol import format_ts
from protocol.bodies import MAX_VALUE

log = logging.getLogger(__name__)


@dataclass
class Device:
    """A configured device: its probes and its current state."""

    id: str
    probes: list[Probe]
    state: DeviceState = field(init=False)
    changes: ChangeWatch = field(init=False)
    #: Set to have the device checked now rather than at the end of its interval.
    wake: asyncio.Event = field(init=False)

    def __post_init__(self) -> None:
        self.state = DeviceState(self.id)
        self.changes = ChangeWatch(self.id)
        self.wake = asyncio.Event()

    @classmethod
    def from_config(
        cls,
        config: DeviceConfig,
        shared: SharedResources | None = None,
        *,
        sections: Mapping[str, BaseModel] | None = None,
        poll_interval: float = 30.0,
    ) -> "Device":
        """The device with one probe per configured check; building them is where a bad check shows.

        ``shared`` holds what the probes of all devices share (the Sync client): give every device the same.
        ``sections`` and ``poll_interval`` are the agent-level settings drivers read (``AgentConfig``).
        """
        context = ProbeContext(
            config.id, config.serial, shared or SharedResources(), sections or {}, poll_interval
        )
        return cls(
            config.id, [build_probe(options, model(config.model), context) for options in config.checks]
        )


def build_devices(
    config: AgentConfig, shared: SharedResources, only: Collection[str] | None = None
) -> list[Device]:
    """The agent's devices (or those in ``only``), in config order, their probes sharing ``shared``."""
    return [
        Device.from_config(
            device, shared, sections=config.driver_sections(), poll_interval=config.poll.interval
        )
        for device in config.devices
        if only is None or device.id in only
    ]


@runtime_checkable
class Watching(Protocol):
    """A probe that notices changes of its device between polls."""

    async def watch(self, notify: Callable[[], None]) -> None:
        """Call ``notify()`` on every change worth a check now; runs until cancelled."""
        ...


class Reporter(Protocol):
    """Where the poller's findings go: the MQTT link in the agent, a list in tests."""

    def publish_state(self, body: dict[str, Any]) -> None: ...
    def publish_event(self, body: dict[str, Any]) -> None: ...
    def publish_telemetry(self, samples: list[dict[str, Any]]) -> None: ...


async def check(probe: Probe) -> CheckResult:
    """Run one probe; a driver bug becomes an inconclusive result (it says nothing of the device), never a
    stopped poll cycle."""
    try:
        return await probe.poll()
    except Exception as exc:  # one broken driver must not stop the others
        log.exception("driver %s failed on %s", probe.driver, probe.target)
        return CheckResult(probe.driver, probe.target, False, f"driver error: {exc!r}", inconclusive=True)


class Poller:
    def __init__(
        self,
        devices: list[Device],
        poll: PollConfig,
        reporter: Reporter,
        sleep: Callable[[float], Any] = asyncio.sleep,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        """``observe(driver, seconds, ok)`` hears of every check run (agent/metrics.py counts them)."""
        self.devices = devices
        self.poll = poll
        self.reporter = reporter
        self._sleep = sleep
        self._observe = observe
        self._unsendable: set[tuple[str, str]] = set()  # (device, metric) whose value was last refused

    async def _check(self, probe: Probe) -> CheckResult:
        started = time.monotonic()
        result = await check(probe)
        if self._observe is not None:
            self._observe(probe.driver, time.monotonic() - started, result.ok)
        return result

    async def _confirmed(self, probe: Probe) -> tuple[CheckResult, datetime]:
        """Check once; if it fails, re-check ``recheck_count`` times and keep the first success. A failure the
        target itself confirmed (``CheckResult.confirmed``) is not re-checked. Also returns when the first
        check ended: a failure that the re-checks confirm has been one since then."""
        result = await self._check(probe)
        first = result.ts
        for _ in range(self.poll.recheck_count):
            if result.ok or result.confirmed:
                break
            await self._sleep(self.poll.recheck_delay)
            result = await self._check(probe)
        return result, first

    async def poll_device(self, device: Device) -> Transition | None:
        """One round for one device: check, judge, and report a change immediately.

        A device found down has been down since its first failed check ended, not since the re-checks that
        confirmed it: that is the ``since`` it is published with, and the collector's confirm window counts
        from it."""
        confirmed = list(await asyncio.gather(*(self._confirmed(probe) for probe in device.probes)))
        results = [result for result, _first in confirmed]
        failed = [first for result, first in confirmed if not result.ok and not result.inconclusive]
        transition = device.state.update(results, min(failed) if failed else None)
        if transition is not None:
            self.reporter.publish_state(device.state.to_wire())
            self.reporter.publish_event(
                {
                    "type": "state-changed",
                    "device": device.id,
                    "from": transition.before,
                    "to": transition.after,
                    "reason": transition.reason,
                    "checks": [r.to_wire() for r in results],
                }
            )
        for event in device.changes.events(results):
            self.reporter.publish_event(event)
        samples = [
            {"device": device.id, "metric": name, "value": value, "ts": format_ts(r.ts)}
            for r in results
            for name, value in r.metrics.items()
            if self._sendable(device.id, name, value)
        ]
        if samples:
            self.reporter.publish_telemetry(samples)
        return transition

    def _sendable(self, device: str, metric: str, value: object) -> bool:
        """True for a value the collector takes (a finite number within ±1e15); the others are left out of
        the telemetry message, which would be refused whole, and logged once until the value is good again."""
        good = (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and -MAX_VALUE <= value <= MAX_VALUE
        )
        key = (device, metric)
        if good:
            self._unsendable.discard(key)
        elif key not in self._unsendable:
            self._unsendable.add(key)
            log.warning(
                "%s: metric %s has a value the collector refuses (%r); left out", device, metric, value
            )
        return good

    async def _watch(self, probe: Watching, device: Device) -> None:
        try:
            await probe.watch(device.wake.set)
        except Exception:  # without its watcher the device is still polled on its interval
            log.exception("change watch of %s on %s failed; polling on the interval only", device.id, probe)

    async def _device_loop(self, device: Device, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        watchers = [
            asyncio.create_task(self._watch(probe, device), name=f"watch-{device.id}")
            for probe in device.probes
            if isinstance(probe, Watching)
        ]
        try:
            while not stop.is_set():
                started = loop.time()
                device.wake.clear()  # a change seen while this round runs makes another round at once
                await self.poll_device(device)
                wait = max(0.0, self.poll.interval - (loop.time() - started))
                await self._until_woken(device, stop, wait)
        finally:
            for task in watchers:
                task.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)

    @staticmethod
    async def _until_woken(device: Device, stop: asyncio.Event, timeout: float) -> None:
        """Wait ``timeout`` seconds, or less when the device is woken or the poller stopped."""
        waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(device.wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waiters:
                task.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; checks in progress are abandoned then, so shutdown is prompt."""
        tasks = [asyncio.create_task(self._device_loop(d, stop), name=f"poll-{d.id}") for d in self.devices]
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in [waiter, *tasks]:
            task.cancel()
        results = await asyncio.gather(waiter, *tasks, return_exceptions=True)
        failures = [r for r in results[1:] if isinstance(r, Exception)]
        if failures and not stop.is_set():
            # A polling loop died of a bug: end the agent with an error so its supervisor restarts it.
            raise failures[0]
