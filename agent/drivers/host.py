"""``host``: the room PC the agent runs on: load, memory, disks, uptime, temperatures, and the room software.

Read with psutil (imported when a check runs). ``uptime_s`` is a metric, so a PC restart becomes a ``reboot``
event. Temperatures are reported where the platform has them (``psutil.sensors_temperatures`` is missing on
Windows and macOS, and empty in most virtual machines): their absence is said in a fact, never a failure.

The meeting-room software is checked by process name. A process matches a pattern (``fnmatch``, case
insensitive, ``.exe`` ignored) by its name or the base name of its ``argv[0]``. A required process that is not
running makes the check ``degraded`` by default (the PC is up and reporting; the room cannot hold meetings):
``missing_process: down`` makes it ``down`` instead, for rooms where that must open a Critical ticket.
"""

import asyncio
import fnmatch
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.drivers.base import CheckResult, Stopwatch

Software = Literal["teams-rooms", "zoom-rooms", "logitech-sync"]

#: What each meeting-room software runs, as (what, name patterns: any one running is enough).
#: Logitech Sync's three services are from docs/devices.md (Logitech's documentation of the Windows app);
#: ZoomRooms is Zoom Rooms' Windows executable. Teams Rooms: the process name is *not found* in a public
#: source: the app is the "Skype Room System" (its event log name), so both its old and new package names are
#: tried; list the real name under ``processes`` when it differs.
SOFTWARE: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "teams-rooms": (("Teams Rooms app", ("Microsoft.SkypeRoomSystem*", "Microsoft.Rooms*", "MTRApp*")),),
    "zoom-rooms": (("Zoom Rooms", ("ZoomRooms*",)),),
    "logitech-sync": (
        ("Sync service LogiSyncHandler", ("LogiSyncHandler*",)),
        ("Sync service LogiSyncMiddleware", ("LogiSyncMiddleware*",)),
        ("Sync service LogiSyncProxy", ("LogiSyncProxy*",)),
    ),
}


class HostOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["host"]
    mounts: list[str] = Field(default_factory=lambda: [os.path.abspath(os.sep)], min_length=0)
    disk_pct: float = Field(90.0, gt=0, le=100, description="a mount fuller than this is degraded")
    memory_pct: float = Field(95.0, gt=0, le=100, description="memory use above this is degraded")
    cpu_pct: float | None = Field(
        None, gt=0, le=100, description="CPU use above this is degraded; none: report"
    )
    temperature_c: float | None = Field(90.0, gt=0, description="a sensor above this is degraded")
    cpu_sample: float = Field(0.5, gt=0, le=10, description="seconds over which CPU use is measured")
    software: list[Software] = Field(default_factory=list, description="meeting-room software that must run")
    processes: list[str] = Field(
        default_factory=list, description="more process names (patterns) that must run"
    )
    missing_process: Literal["degraded", "down"] = "degraded"

    @field_validator("processes")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern.strip():
                raise ValueError("a process name must not be empty")
        return value


def _norm(name: str) -> str:
    name = name.strip().lower()
    return name[:-4] if name.endswith(".exe") else name


@dataclass(frozen=True)
class Reading:
    cpu_pct: float
    memory_pct: float
    uptime_s: float
    disks: dict[str, float | str]  # mount -> percent used, or why it could not be read
    temperatures: dict[str, float] | None  # sensor -> degrees C; None: the platform has none
    process_names: set[str] = field(default_factory=set)


def read_host(mounts: list[str], cpu_sample: float) -> Reading:
    """Everything the check needs, in one blocking call (run in a thread)."""
    import psutil

    cpu = psutil.cpu_percent(interval=cpu_sample)
    disks: dict[str, float | str] = {}
    for mount in mounts:
        try:
            disks[mount] = psutil.disk_usage(mount).percent
        except OSError as exc:
            disks[mount] = exc.strerror or str(exc)
    temperatures: dict[str, float] | None = None
    sensors = getattr(psutil, "sensors_temperatures", None)
    if sensors is not None:
        try:
            found = sensors()
        except (OSError, RuntimeError):
            found = {}
        temperatures = {
            f"{chip}/{entry.label or index}": entry.current
            for chip, entries in found.items()
            for index, entry in enumerate(entries)
            if entry.current is not None
        }
    names: set[str] = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        info: dict[str, Any] = process.info
        if info.get("name"):
            names.add(_norm(info["name"]))
        cmdline = info.get("cmdline")
        if cmdline:
            names.add(_norm(os.path.basename(cmdline[0].replace("\\", "/"))))
    return Reading(
        cpu_pct=cpu,
        memory_pct=psutil.virtual_memory().percent,
        uptime_s=max(0.0, time.time() - psutil.boot_time()),
        disks=disks,
        temperatures=temperatures,
        process_names=names,
    )


class HostProbe:
    driver = "host"

    def __init__(self, options: HostOptions) -> None:
        self.options = options
        self.target = "localhost"
        required: list[tuple[str, tuple[str, ...]]] = []
        for software in options.software:
            required.extend(SOFTWARE[software])
        required.extend((f"process {name}", (name,)) for name in options.processes)
        self.required = tuple(required)

    def missing(self, names: set[str]) -> list[str]:
        """What of the required software is not running, given the running process names."""
        absent = []
        for what, patterns in self.required:
            wanted = [_norm(p) for p in patterns]
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names for pattern in wanted):
                absent.append(what)
        return absent

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            reading = await asyncio.to_thread(read_host, self.options.mounts, self.options.cpu_sample)
        except ImportError:
            detail = "psutil is not installed (it comes with the agent: reinstall hezo)"
            return CheckResult(
                self.driver, self.target, False, detail, duration_ms=watch.ms(), inconclusive=True
            )
        except (OSError, RuntimeError) as exc:  # anything else is a driver error, which the poller reports
            detail = f"cannot read the host: {exc!r}"
            return CheckResult(
                self.driver, self.target, False, detail, duration_ms=watch.ms(), inconclusive=True
            )
        return self.judge(reading, watch.ms())

    def judge(self, reading: Reading, duration_ms: float | None = None) -> CheckResult:
        o = self.options
        metrics = {
            "cpu_pct": reading.cpu_pct,
            "memory_pct": reading.memory_pct,
            "uptime_s": round(reading.uptime_s, 1),
        }
        facts: dict[str, str] = {}
        problems: list[str] = []
        for mount, used in reading.disks.items():
            if isinstance(used, str):
                problems.append(f"disk {mount}: cannot read: {used}")
                continue
            metrics[f"disk_pct:{mount}"] = used
            if used > o.disk_pct:
                problems.append(f"disk {mount} {used:.0f}% full, over {o.disk_pct:g}%")
        if reading.memory_pct > o.memory_pct:
            problems.append(f"memory {reading.memory_pct:.0f}% used, over {o.memory_pct:g}%")
        if o.cpu_pct is not None and reading.cpu_pct > o.cpu_pct:
            problems.append(f"CPU {reading.cpu_pct:.0f}% busy, over {o.cpu_pct:g}%")
        if reading.temperatures is None:
            facts["temperatures"] = "not available on this platform"
        elif not reading.temperatures:
            facts["temperatures"] = "no sensors found"
        else:
            hottest, degrees = max(reading.temperatures.items(), key=lambda item: item[1])
            metrics["temperature_c_max"] = degrees
            if o.temperature_c is not None and degrees > o.temperature_c:
                problems.append(f"{hottest} at {degrees:.0f} C, over {o.temperature_c:g} C")
        absent = self.missing(reading.process_names)
        metrics["processes_missing"] = float(len(absent))
        summary = (
            f"CPU {reading.cpu_pct:.0f}%, memory {reading.memory_pct:.0f}%, "
            f"up {reading.uptime_s / 3600:.1f} h"
        )
        if absent:
            gone = f"not running: {', '.join(absent)}"
            if o.missing_process == "down":
                return CheckResult(
                    self.driver,
                    self.target,
                    False,
                    gone,
                    duration_ms=duration_ms,
                    metrics=metrics,
                    facts=facts,
                )
            problems.insert(0, gone)
        detail = "; ".join(problems) if problems else summary
        return CheckResult(
            self.driver,
            self.target,
            True,
            detail,
            duration_ms=duration_ms,
            degraded=bool(problems),
            metrics=metrics,
            facts=facts,
        )


def build(options: HostOptions) -> HostProbe:
    return HostProbe(options)
