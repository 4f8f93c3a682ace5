"""``sync``: what Logitech Sync (the vendor's cloud) says of a device: status, health, peripherals, firmware.

The agent-level ``sync:`` section holds the account (organisation id, client certificate); each device's
``{driver: sync}`` check names the device by serial (default: the device's ``serial``) or by Sync device id.
Every check of an agent shares one client, which fetches the whole place list at most once per interval
(see ``agent.drivers.sync.client``), so 40 rooms cost the same requests as one.

Mapping: ``Offline`` -> the check fails; ``Online``/``InUse`` -> it passes; ``healthStatus`` Warning/Error
or a peripheral with fewer ``actual`` than ``expected`` -> degraded, with the reason; a device Sync does not
list, a failed fetch, an unknown status, or a Sync product that is not the configured model -> inconclusive
with the reason: Sync cannot say, so it never makes the device down.
Facts: ``firmware`` (Sync's ``version``), ``sync_status``. Metrics: ``sync.<peripheral>.actual`` and
``.expected`` per peripheral, ``sync.in_use`` (1 in a meeting, else 0).
"""

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.catalog import Model
from agent.drivers.base import CheckResult, Stopwatch, TimedResults
from agent.drivers.context import ProbeContext, ResourceKey
from agent.drivers.sync.account import SyncAccountConfig
from agent.drivers.sync.client import SyncClient, SyncDevice
from agent.errors import AgentConfigError

#: The one client every sync check of the agent shares.
CLIENT = ResourceKey[SyncClient]("sync.client")

#: Words for the peripheral counts Sync reports, singular and plural.
PERIPHERAL_WORDS: dict[str, tuple[str, str]] = {
    "camera": ("camera", "cameras"),
    "micPod": ("mic pod", "mic pods"),
    "micPodHub": ("mic pod hub", "mic pod hubs"),
    "speaker": ("speaker", "speakers"),
    "tableHub": ("table hub", "table hubs"),
    "displayHub": ("display hub", "display hubs"),
}


class SyncOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["sync"]
    serial: str | None = Field(None, min_length=1, description="default: the device's serial")
    device_id: str | None = Field(None, min_length=1, description="Sync's device id, instead of the serial")

    @model_validator(mode="after")
    def _one_key(self) -> "SyncOptions":
        if self.serial is not None and self.device_id is not None:
            raise ValueError("give serial or device_id, not both")
        return self


def _when(epoch_ms: int | None) -> str:
    if not epoch_ms:
        return "an unknown time"
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def missing_peripherals(device: SyncDevice) -> list[str]:
    """``["1 of 2 mic pods"]``: each peripheral Sync expects more of than it sees."""
    found = []
    for name, (expected, actual) in sorted(device.peripherals.items()):
        if actual < expected:
            one, many = PERIPHERAL_WORDS.get(name, (name, name))
            found.append(f"{actual} of {expected} {one if expected == 1 else many}")
    return found


class SyncProbe(TimedResults):
    driver = "sync"

    def __init__(
        self,
        client: SyncClient,
        *,
        serial: str | None,
        device_id: str | None,
        sync_names: tuple[str, ...] = (),
        model_name: str = "",
    ) -> None:
        if serial is None and device_id is None:
            raise ValueError("a sync check needs the device's serial or its Sync device_id")
        self.client = client
        self.serial = serial
        self.device_id = device_id
        self.sync_names = sync_names
        self.model_name = model_name
        self.target = device_id or serial or ""

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        snapshot = await self.client.snapshot()
        if snapshot.error is not None:
            # The API failed, not the device: inconclusive, so a Sync outage opens no tickets.
            return self._result(False, f"Sync Cloud API: {snapshot.error}", watch, inconclusive=True)
        device = snapshot.find(serial=self.serial, device_id=self.device_id)
        if device is None:
            key = f"device id {self.device_id}" if self.device_id else f"serial {self.serial}"
            # Sync knows nothing of it, so Sync cannot say: a configuration to fix, not a dead device.
            return self._result(
                False,
                f"Sync lists no device with {key} in organisation {self.client.account.org_id} "
                f"({len(snapshot.devices)} devices): removed from Sync, or a wrong {key.rsplit(' ', 1)[0]}",
                watch,
                inconclusive=True,
            )
        if self.sync_names and device.name not in self.sync_names:
            return self._result(
                False,
                f"Sync reports a {device.name!r} here, but the device is configured as {self.model_name} "
                f"(Sync name {' or '.join(repr(n) for n in self.sync_names)})",
                watch,
                inconclusive=True,
            )
        facts = {"sync_status": device.status or "unknown"}
        if device.version:
            facts["firmware"] = device.version
        metrics: dict[str, float] = {"sync.in_use": 1.0 if device.status == "InUse" else 0.0}
        for name, (expected, actual) in device.peripherals.items():
            metrics[f"sync.{name}.expected"] = float(expected)
            metrics[f"sync.{name}.actual"] = float(actual)
        where = f" in {device.place}" if device.place else ""
        if device.status == "Offline":
            return self._result(
                False,
                f"Sync reports the {device.name}{where} Offline (disconnected {_when(device.last_seen)})",
                watch,
                facts=facts,
            )
        if device.status not in ("Online", "InUse"):
            return self._result(
                False,
                f"Sync reports an unknown status {device.status!r}",
                watch,
                facts=facts,
                inconclusive=True,
            )
        problems = missing_peripherals(device)
        if device.health in ("Warning", "Error"):
            problems.insert(0, f"Sync health {device.health}")
        if problems:
            return self._result(True, "; ".join(problems), watch, degraded=True, metrics=metrics, facts=facts)
        return self._result(True, f"{device.status}, no issues", watch, metrics=metrics, facts=facts)


def shared_client(context: ProbeContext) -> SyncClient:
    """The client of the agent's Sync account, made by the first sync check and shared by the others."""
    account = context.sections.get("sync")
    if not isinstance(account, SyncAccountConfig):
        raise AgentConfigError("a sync check needs the agent's sync: section (org_id, cert_file, key_file)")
    return context.shared.get(CLIENT, lambda: SyncClient(account, context.poll_interval))


def build(options: SyncOptions, model: Model, context: ProbeContext) -> SyncProbe:
    serial = options.serial or (None if options.device_id else context.serial)
    return SyncProbe(
        shared_client(context),
        serial=serial,
        device_id=options.device_id,
        sync_names=model.sync_names,
        model_name=model.name,
    )
