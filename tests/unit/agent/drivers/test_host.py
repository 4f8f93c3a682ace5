"""The host driver's judgement of a reading: thresholds, temperatures that may not exist, and reboots."""

from agent.changes import ChangeWatch
from agent.drivers.host import HostOptions, HostProbe, Reading


def reading(**changes: object) -> Reading:
    values: dict[str, object] = {
        "cpu_pct": 10.0,
        "memory_pct": 40.0,
        "uptime_s": 7200.0,
        "disks": {"/": 50.0},
        "temperatures": {"coretemp/Package id 0": 55.0},
        "process_names": {"zoomrooms", "logisynchandler"},
    }
    values.update(changes)
    return Reading(**values)  # type: ignore[arg-type]


def probe(**options: object) -> HostProbe:
    return HostProbe(HostOptions.model_validate({"driver": "host", **options}))


def test_a_healthy_pc_is_up_with_a_summary() -> None:
    result = probe().judge(reading())
    assert result.ok
    assert not result.degraded
    assert result.detail == "CPU 10%, memory 40%, up 2.0 h"
    assert result.metrics["temperature_c_max"] == 55.0


def test_no_temperature_support_is_said_not_failed() -> None:
    result = probe().judge(reading(temperatures=None))
    assert result.ok
    assert not result.degraded
    assert result.facts == {"temperatures": "not available on this platform"}
    assert "temperature_c_max" not in result.metrics


def test_a_hot_sensor_is_degraded() -> None:
    result = probe(temperature_c=80).judge(reading(temperatures={"coretemp/Core 0": 92.0}))
    assert result.degraded
    assert result.detail == "coretemp/Core 0 at 92 C, over 80 C"


def test_memory_and_cpu_thresholds() -> None:
    result = probe(memory_pct=50, cpu_pct=5).judge(reading(memory_pct=60.0))
    assert result.detail == "memory 60% used, over 50%; CPU 10% busy, over 5%"


def test_cpu_is_only_reported_unless_a_threshold_is_set() -> None:
    assert not probe().judge(reading(cpu_pct=100.0)).degraded


def test_process_names_match_patterns_without_case_or_exe() -> None:
    host = probe(software=["zoom-rooms"], processes=["LogiSync*.exe"])
    assert host.missing({"zoomrooms", "logisynchandler"}) == []
    assert host.missing({"zoomroomsx"}) == ["process LogiSync*.exe"]


def test_a_pc_restart_is_a_reboot_event() -> None:
    host = probe()
    watch = ChangeWatch("room-pc")
    assert watch.events([host.judge(reading(uptime_s=86400.0))]) == []
    events = watch.events([host.judge(reading(uptime_s=60.0))])
    assert [e["type"] for e in events] == ["reboot"]
