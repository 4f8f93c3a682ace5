"""The host driver reads this machine with real psutil and finds processes the test starts by name."""

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.host import HostOptions, build

pytestmark = pytest.mark.integration

SLEEP = shutil.which("sleep") or "/bin/sleep"


def poll(**options: object) -> CheckResult:
    probe = build(HostOptions.model_validate({"driver": "host", "cpu_sample": 0.1, **options}))
    return asyncio.run(probe.poll())


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        process.kill()
        process.wait()


def run_as(started: list[subprocess.Popen[bytes]], tmp_path: Path, name: str, *, copy: bool) -> None:
    """A long sleep whose process name (a renamed copy) or argv[0] (the same binary) is ``name``."""
    if copy:
        binary = tmp_path / name
        shutil.copy(SLEEP, binary)
        started.append(subprocess.Popen([str(binary), "300"]))
    else:
        started.append(subprocess.Popen([name, "300"], executable=SLEEP))


def test_this_machine_reports_its_load_memory_disk_and_uptime() -> None:
    result = poll()
    assert result.ok, result.detail
    assert 0 <= result.metrics["cpu_pct"] <= 100
    assert 0 < result.metrics["memory_pct"] <= 100
    assert 0 < result.metrics["disk_pct:/"] <= 100
    assert result.metrics["uptime_s"] > 0
    assert result.metrics["processes_missing"] == 0


def test_a_required_room_app_that_runs_is_found_by_its_name(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    run_as(started, tmp_path, "ZoomRooms.exe", copy=True)
    result = poll(software=["zoom-rooms"])
    assert result.ok, result.detail
    assert not result.degraded, result.detail


def test_sync_services_are_found_by_argv0_and_a_missing_one_is_named(
    started: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    run_as(started, tmp_path, "LogiSyncHandler", copy=False)
    run_as(started, tmp_path, "LogiSyncMiddleware", copy=False)
    result = poll(software=["logitech-sync"])
    assert result.ok
    assert result.degraded
    assert result.detail == "not running: Sync service LogiSyncProxy"
    assert result.metrics["processes_missing"] == 1


def test_a_missing_required_process_is_degraded_by_default() -> None:
    result = poll(processes=["hezo-no-such-process-*"])
    assert result.ok
    assert result.degraded
    assert result.detail == "not running: process hezo-no-such-process-*"


def test_a_missing_required_process_can_be_made_down() -> None:
    result = poll(processes=["hezo-no-such-process"], missing_process="down")
    assert not result.ok
    assert result.detail == "not running: process hezo-no-such-process"


def test_a_disk_over_its_threshold_is_degraded() -> None:
    result = poll(disk_pct=0.001)
    assert result.degraded
    assert result.detail.startswith("disk / ")
    assert result.detail.endswith("% full, over 0.001%")


def test_a_mount_that_does_not_exist_is_reported_as_data(tmp_path: Path) -> None:
    result = poll(mounts=["/", str(tmp_path / "gone")])
    assert result.ok
    assert result.degraded
    assert result.detail == f"disk {tmp_path / 'gone'}: cannot read: No such file or directory"
