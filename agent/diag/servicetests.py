"""Run a device's configured checks now, with re-checks, and report what each one found.

This is the on-site service test: the same drivers and the same judgement as the agent, without a broker.
"""

import asyncio
from dataclasses import dataclass
from typing import Any

from agent.config import AgentConfig
from agent.drivers import SharedResources
from agent.poller import Poller, build_devices


@dataclass(frozen=True)
class DeviceReport:
    device: str
    model: str
    serial: str | None
    state: str
    reason: str
    checks: list[dict[str, Any]]


class _Discard:
    """The service test prints its findings; nothing is published."""

    def publish_state(self, body: dict[str, Any]) -> None:
        return None

    def publish_event(self, body: dict[str, Any]) -> None:
        return None

    def publish_telemetry(self, samples: list[dict[str, Any]]) -> None:
        return None


async def run_service_tests(config: AgentConfig, only: set[str] | None = None) -> list[DeviceReport]:
    """Check every configured device (or those in ``only``) once, concurrently."""
    chosen = [d for d in config.devices if only is None or d.id in only]
    shared = SharedResources()  # one Sync fetch for every device
    devices = build_devices(config, shared, only)
    poller = Poller(devices, config.poll, _Discard())
    try:
        await asyncio.gather(*(poller.poll_device(device) for device in devices))
    finally:
        shared.close()
    return [
        DeviceReport(
            conf.id,
            conf.model,
            conf.serial,
            device.state.state,
            device.state.reason,
            [check.to_wire() for check in device.state.checks],
        )
        for conf, device in zip(chosen, devices, strict=True)
    ]
