"""The poller re-checks a failure before believing it, reports a change at once, and isolates devices."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent.config import PollConfig
from agent.drivers.base import CheckResult
from agent.poller import Device, Poller
from tests.support.reporting import Recorder


class ScriptedProbe:
    """Answers with a scripted sequence of outcomes: True (alive), False (dead) or an exception to raise."""

    driver = "scripted"

    def __init__(self, target: str, outcomes: list[Any]) -> None:
        self.target = target
        self.outcomes = outcomes
        self.calls = 0

    async def poll(self) -> CheckResult:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, CheckResult):
            return outcome
        return CheckResult(self.driver, self.target, outcome, "alive" if outcome else "no answer")


async def no_sleep(_seconds: float) -> None:
    return None


def poller(devices: list[Device], recorder: Recorder, recheck_count: int = 2) -> Poller:
    config = PollConfig(interval=30, recheck_count=recheck_count, recheck_delay=1)
    return Poller(devices, config, recorder, sleep=no_sleep)


def test_a_single_failure_that_recovers_on_recheck_is_not_down() -> None:
    probe = ScriptedProbe("bar", [False, True])
    recorder = Recorder()
    device = Device("bar", [probe])
    asyncio.run(poller([device], recorder).poll_device(device))
    assert device.state.state == "up"
    assert probe.calls == 2
    assert [e["to"] for e in recorder.events] == ["up"]


def test_a_failure_confirmed_by_every_recheck_is_down_with_its_evidence() -> None:
    probe = ScriptedProbe("bar", [True, False])
    recorder = Recorder()
    device = Device("bar", [probe])
    run = poller([device], recorder, recheck_count=2)
    asyncio.run(run.poll_device(device))
    asyncio.run(run.poll_device(device))
    assert probe.calls == 1 + 3  # one good round, then one check and two re-checks
    assert device.state.state == "down"
    assert recorder.states[-1]["state"] == "down"
    assert recorder.states[-1]["reason"] == "scripted bar: no answer"
    assert recorder.states[-1]["checks"][0]["ok"] is False
    assert [(e["from"], e["to"]) for e in recorder.events] == [("unknown", "up"), ("up", "down")]


def test_an_unchanged_state_is_not_published_again() -> None:
    recorder = Recorder()
    device = Device("bar", [ScriptedProbe("bar", [True])])
    run = poller([device], recorder)
    for _ in range(3):
        asyncio.run(run.poll_device(device))
    assert len(recorder.states) == 1
    assert len(recorder.events) == 1


def test_a_driver_that_raises_cannot_tell_and_other_devices_are_still_polled() -> None:
    recorder = Recorder()
    broken = Device("broken", [ScriptedProbe("x", [RuntimeError("bug")])])
    healthy = Device("healthy", [ScriptedProbe("y", [True])])
    run = poller([broken, healthy], recorder, recheck_count=0)

    async def one_round() -> None:
        await asyncio.gather(run.poll_device(broken), run.poll_device(healthy))

    asyncio.run(one_round())
    assert broken.state.state == "unknown"  # a bug in the agent says nothing of the device
    assert broken.state.reason == "scripted x: cannot tell: driver error: RuntimeError('bug')"
    assert healthy.state.state == "up"


def test_one_failing_check_of_several_makes_the_device_down() -> None:
    recorder = Recorder()
    device = Device("bar", [ScriptedProbe("a", [True]), ScriptedProbe("b", [False])])
    asyncio.run(poller([device], recorder, recheck_count=0).poll_device(device))
    assert device.state.state == "down"
    assert device.state.reason == "scripted b: no answer"


def test_run_stops_when_asked() -> None:
    recorder = Recorder()
    device = Device("bar", [ScriptedProbe("bar", [True])])
    config = PollConfig(interval=0.01, recheck_count=0, recheck_delay=0)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Poller([device], config, recorder).run(stop))
        while len(recorder.events) < 1:
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, timeout=5)

    asyncio.run(main())
    assert device.state.state == "up"


class ReadingProbe:
    """Reports scripted (uptime, firmware) readings, one per poll."""

    driver = "reading"
    target = "switch-port-7"

    def __init__(self, readings: list[tuple[float, str]]) -> None:
        self.readings = readings
        self.calls = 0

    async def poll(self) -> CheckResult:
        uptime, firmware = self.readings[min(self.calls, len(self.readings) - 1)]
        self.calls += 1
        return CheckResult(
            self.driver, self.target, True, "ok", metrics={"uptime_s": uptime}, facts={"firmware": firmware}
        )


def _rounds(probe: ReadingProbe, rounds: int) -> Recorder:
    recorder = Recorder()
    device = Device("tap-ip", [probe])
    run = poller([device], recorder)
    for _ in range(rounds):
        asyncio.run(run.poll_device(device))
    return recorder


def test_an_uptime_that_goes_back_is_reported_once_as_a_reboot() -> None:
    recorder = _rounds(ReadingProbe([(1000, "1.0"), (1030, "1.0"), (12, "1.0"), (42, "1.0")]), 4)
    reboots = [e for e in recorder.events if e["type"] == "reboot"]
    assert len(reboots) == 1
    assert reboots[0]["device"] == "tap-ip"
    assert "1030 s -> 12 s" in reboots[0]["reason"]


def test_a_growing_uptime_and_the_same_firmware_report_nothing_but_the_first_state() -> None:
    recorder = _rounds(ReadingProbe([(10, "1.0"), (40, "1.0"), (70, "1.0")]), 3)
    assert [e["type"] for e in recorder.events] == ["state-changed"]


def test_a_new_firmware_version_is_reported_with_both_versions() -> None:
    recorder = _rounds(ReadingProbe([(10, "1.0"), (40, "1.1")]), 2)
    changed = [e for e in recorder.events if e["type"] == "firmware-changed"]
    assert len(changed) == 1
    assert "1.0 -> 1.1" in changed[0]["reason"]
    assert changed[0]["checks"][0]["facts"] == {"firmware": "1.1"}


def test_a_state_carries_the_figures_of_the_checks_that_decided_it() -> None:
    class LossyProbe:
        driver = "icmp"
        target = "198.18.0.2"

        async def poll(self) -> CheckResult:
            return CheckResult(
                self.driver, self.target, True, "40% loss", degraded=True, metrics={"loss_pct": 40.0}
            )

    recorder = Recorder()
    device = Device("tap-ip", [LossyProbe()])
    asyncio.run(poller([device], recorder).poll_device(device))
    assert recorder.states[-1]["state"] == "degraded"
    assert recorder.states[-1]["checks"][0]["metrics"] == {"loss_pct": 40.0}


def test_inconclusive_checks_leave_a_device_unknown_or_judged_by_its_other_checks() -> None:
    from agent.state import judge

    cloud_down = CheckResult("sync", "org", False, "Sync Cloud API: no answer", inconclusive=True)
    assert judge([cloud_down]) == ("unknown", "sync org: cannot tell: Sync Cloud API: no answer")
    assert judge([cloud_down, CheckResult("https", "bar", True, "HTTP 200")])[0] == "up"
    assert judge([cloud_down, CheckResult("https", "bar", False, "refused")])[0] == "down"


def test_a_failure_the_target_confirmed_itself_is_not_rechecked() -> None:
    said = CheckResult("scripted", "bar", False, "link down (the switch sent linkDown)", confirmed=True)
    probe = ScriptedProbe("bar", [said])
    device = Device("bar", [probe])
    asyncio.run(poller([device], Recorder(), recheck_count=2).poll_device(device))
    assert probe.calls == 1
    assert device.state.state == "down"


def test_a_device_is_down_since_its_first_failed_check_not_since_the_rechecks() -> None:
    first = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
    failures = [
        CheckResult("scripted", "bar", False, "no answer", ts=first + timedelta(seconds=n)) for n in range(3)
    ]
    probe = ScriptedProbe("bar", failures)
    recorder = Recorder()
    device = Device("bar", [probe])
    asyncio.run(poller([device], recorder, recheck_count=2).poll_device(device))
    assert probe.calls == 3
    assert recorder.states[-1]["since"] == "2026-11-24T10:00:00.000Z"


def test_an_inconclusive_check_does_not_date_a_down_device() -> None:
    unsure = CheckResult("scripted", "a", False, "no answer from the switch", inconclusive=True)
    device = Device("bar", [ScriptedProbe("a", [unsure]), ScriptedProbe("b", [False])])
    asyncio.run(poller([device], Recorder(), recheck_count=0).poll_device(device))
    assert device.state.state == "down"
    assert device.state.reason == "scripted b: no answer"


def test_a_metric_the_collector_would_refuse_is_left_out_and_the_others_are_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = [
        {"fine": 1.5, "huge": 2e15, "nan": float("nan"), "inf": float("-inf")},
        {"fine": 2.5, "huge": 3e15, "nan": float("nan"), "inf": 7.0},
    ]
    probes = [
        ScriptedProbe("bar", [CheckResult("scripted", "bar", True, "alive", metrics=m) for m in values])
    ]
    recorder = Recorder()
    device = Device("bar", probes)
    run = poller([device], recorder)
    with caplog.at_level(logging.WARNING, logger="agent.poller"):
        asyncio.run(run.poll_device(device))
        asyncio.run(run.poll_device(device))
    assert [(s["metric"], s["value"]) for s in recorder.samples] == [
        ("fine", 1.5),
        ("fine", 2.5),
        ("inf", 7.0),
    ]
    refused = sorted(r.getMessage().split()[2] for r in caplog.records)
    assert refused == ["huge", "inf", "nan"]  # once each, not at every poll
    # The state carries the figures JSON can (the others would stop it being sent at all).
    assert recorder.states[0]["checks"][0]["metrics"] == {"fine": 1.5, "huge": 2e15}
