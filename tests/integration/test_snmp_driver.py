"""The snmp driver against a real net-snmp snmpd: the simulated PoE switch, v2c and v3."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import PollConfig
from agent.drivers.base import CheckResult
from agent.drivers.snmp import SnmpOptions, build, close_engine
from agent.poller import Device, Poller
from simulator.snmpswitch import (
    DEFAULT_V3_AUTH_KEY,
    DEFAULT_V3_PRIV_KEY,
    DEFAULT_V3_USER,
    POE_DISABLED,
    POE_FAULT,
    SnmpSwitch,
    SwitchPort,
    free_udp_port,
)
from tests.support.reporting import Recorder

pytestmark = pytest.mark.integration

V3 = {
    "version": "3",
    "user": DEFAULT_V3_USER,
    "auth_protocol": "sha",
    "auth_key": DEFAULT_V3_AUTH_KEY,
    "priv_protocol": "aes",
    "priv_key": DEFAULT_V3_PRIV_KEY,
}


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[SnmpSwitch]:
    device = SnmpSwitch(tmp_path, [SwitchPort(5, "gi1/0/5", "rally-bar"), SwitchPort(6, "gi1/0/6")])
    device.start()
    try:
        yield device
    finally:
        device.stop()


def options(switch: SnmpSwitch, **extra: Any) -> SnmpOptions:
    doc: dict[str, Any] = {"driver": "snmp", "host": switch.host, "port": switch.port, "if_index": 5}
    if extra.get("version") != "3":
        doc["community"] = switch.community
    doc.update(extra)
    return SnmpOptions.model_validate(doc)


def poll(opts: SnmpOptions) -> CheckResult:
    async def once() -> CheckResult:
        try:
            return await build(opts).poll()
        finally:
            close_engine()

    return asyncio.run(once())


def test_a_port_delivering_power_with_link_up_is_up(switch: SnmpSwitch) -> None:
    result = poll(options(switch))
    assert result.ok, result.detail
    assert not result.degraded
    assert result.detail == "port ifIndex 5 link up, PoE deliveringPower"
    assert result.metrics["power_mw"] == 12950
    assert 0 <= result.metrics["uptime_s"] < 600
    assert result.facts["firmware"].startswith("Cisco IOS Software")


def test_a_port_found_by_its_name_is_read(switch: SnmpSwitch) -> None:
    result = poll(options(switch, if_index=None, if_name="gi1/0/6"))
    assert result.ok, result.detail
    assert result.detail.startswith("port gi1/0/6 link up")


def test_an_unpowered_device_leaves_the_port_down_and_searching(switch: SnmpSwitch) -> None:
    switch.ports[5].set_powered(False)
    switch.write_state()
    result = poll(options(switch))
    assert not result.ok
    assert result.detail == "port ifIndex 5 link down, PoE searching"
    assert result.metrics["power_mw"] == 0


def test_poe_disabled_with_the_link_up_is_degraded_not_down(switch: SnmpSwitch) -> None:
    # A link needs a powered device at the far end: it runs, on another supply.
    switch.ports[5].poe = POE_DISABLED
    switch.write_state()
    result = poll(options(switch))
    assert result.ok
    assert result.degraded
    assert result.detail == (
        "port ifIndex 5 link up, PoE disabled: link up but no PoE power "
        "(the device has another supply, or set poe_port)"
    )


def test_a_poe_fault_while_the_link_is_up_is_degraded(switch: SnmpSwitch) -> None:
    switch.ports[5].poe = POE_FAULT
    switch.write_state()
    result = poll(options(switch))
    assert result.ok
    assert result.degraded
    assert result.detail == "port ifIndex 5 link up, PoE fault: PoE fault while the link is up"


def test_a_device_with_its_own_supply_is_judged_on_link_only(switch: SnmpSwitch) -> None:
    switch.ports[5].poe = POE_DISABLED
    switch.write_state()
    result = poll(options(switch, poe=False))
    assert result.ok, result.detail
    assert "power_mw" not in result.metrics


def test_an_unknown_port_is_inconclusive_with_a_reason(switch: SnmpSwitch) -> None:
    result = poll(options(switch, if_index=42))
    assert result.inconclusive
    assert result.detail == "no port ifIndex 42 on the switch"


def test_an_unknown_port_name_is_inconclusive_and_lists_the_nearest_names(switch: SnmpSwitch) -> None:
    result = poll(options(switch, if_index=None, if_name="gi9/0/5"))
    assert result.inconclusive
    assert result.detail == (
        "no interface named 'gi9/0/5' on the switch (ifName, ifDescr, ifAlias, any case); "
        "nearest: gi1/0/5, gi1/0/6"
    )


def test_a_port_name_matches_in_any_case(switch: SnmpSwitch) -> None:
    result = poll(options(switch, if_index=None, if_name="GI1/0/6"))
    assert result.ok, result.detail
    assert result.detail.startswith("port GI1/0/6 link up, PoE deliveringPower")


def test_snmpv3_with_sha_and_aes_reads_the_port(switch: SnmpSwitch) -> None:
    result = poll(options(switch, **V3))
    assert result.ok, result.detail
    assert result.metrics["power_mw"] == 12950


def test_snmpv3_with_a_wrong_auth_key_says_authentication_failed(switch: SnmpSwitch) -> None:
    result = poll(options(switch, **{**V3, "auth_key": "not-the-key"}))
    assert result.inconclusive
    assert result.detail == "SNMPv3 authentication failed (wrong auth key or protocol)"


def test_snmpv3_with_a_wrong_privacy_key_reads_as_silence(switch: SnmpSwitch) -> None:
    result = poll(options(switch, **{**V3, "priv_key": "not-the-key", "timeout": 0.5, "retries": 0}))
    assert result.inconclusive
    assert result.detail == "no answer within 0.5 s x1 (switch down or unreachable, or wrong privacy key)"


def test_snmpv3_with_an_unknown_user_says_so(switch: SnmpSwitch) -> None:
    result = poll(options(switch, **{**V3, "user": "mallory"}))
    assert result.inconclusive
    assert result.detail == "SNMPv3 user 'mallory' unknown to the switch"


def test_a_wrong_community_reads_as_silence(switch: SnmpSwitch) -> None:
    result = poll(options(switch, community="private", timeout=0.5, retries=0))
    assert result.inconclusive
    assert result.detail == "no answer within 0.5 s x1 (switch down or unreachable, or wrong community)"


def test_nothing_listening_is_a_timeout_with_a_reason() -> None:
    opts = SnmpOptions.model_validate(
        {
            "driver": "snmp",
            "host": "127.0.0.1",
            "port": free_udp_port("127.0.0.1"),
            "community": "public",
            "if_index": 5,
            "timeout": 0.3,
            "retries": 1,
        }
    )
    result = poll(opts)
    assert result.inconclusive
    assert result.detail.startswith("no answer within 0.3 s x2")


def test_an_ipv6_switch_address_is_polled_over_udp6() -> None:
    opts = SnmpOptions.model_validate(
        {"driver": "snmp", "host": "::1", "port": 9, "community": "public", "if_index": 5, "timeout": 0.3}
    )
    result = poll(opts)
    assert not result.ok
    assert result.detail.startswith("no answer within 0.3 s")  # sent, unanswered: not a resolution error


def test_a_name_that_does_not_resolve_is_a_reason() -> None:
    opts = SnmpOptions.model_validate(
        {"driver": "snmp", "host": "switch.invalid", "community": "public", "if_index": 5, "timeout": 0.3}
    )
    result = poll(opts)
    assert result.inconclusive
    assert result.detail == "cannot resolve switch address 'switch.invalid'"


def test_a_stopped_switch_is_a_timeout_that_cannot_tell(switch: SnmpSwitch) -> None:
    switch.stop()
    result = poll(options(switch, timeout=0.3, retries=0))
    assert result.inconclusive
    assert result.detail.startswith("no answer within 0.3 s x1")


def test_a_switch_reboot_is_a_reboot_event_through_the_poller(switch: SnmpSwitch) -> None:
    switch.boot_time -= 3600  # up for an hour
    switch.write_state()
    device = Device("rally-bar", [build(options(switch))])
    recorder = Recorder()
    poller = Poller([device], PollConfig(interval=1, recheck_count=0), recorder)

    async def rounds() -> None:
        try:
            await poller.poll_device(device)
            switch.reboot()
            await poller.poll_device(device)
        finally:
            close_engine()

    asyncio.run(rounds())
    reboots = [e for e in recorder.events if e["type"] == "reboot"]
    assert len(reboots) == 1, recorder.events
    assert reboots[0]["device"] == "rally-bar"
    assert reboots[0]["reason"].startswith(f"snmp://{switch.host}:{switch.port}/5 restarted: uptime 36")


def test_a_dead_switch_does_not_hold_up_the_other_devices(switch: SnmpSwitch) -> None:
    dead = SnmpOptions.model_validate(
        {
            "driver": "snmp",
            "host": "127.0.0.1",
            "port": free_udp_port("127.0.0.1"),
            "community": "public",
            "if_index": 5,
            "timeout": 1.5,
            "retries": 0,
        }
    )
    devices = [Device("tap-ip", [build(dead)]), Device("rally-bar", [build(options(switch))])]
    recorder = Recorder()
    poller = Poller(devices, PollConfig(interval=0.1, recheck_count=2, recheck_delay=1.0), recorder)

    async def run_until_dead_is_judged() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop))
        try:
            async with asyncio.timeout(60):
                while devices[0].state.reason == "not checked yet":
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            close_engine()

    asyncio.run(run_until_dead_is_judged())
    # A switch that does not answer says nothing of the device: unknown, never down.
    assert devices[0].state.state == "unknown"
    assert "cannot tell: no answer within 1.5 s" in devices[0].state.reason
    assert not any(s["device"] == "tap-ip" and s["state"] == "down" for s in recorder.states)
    # Judging the dead one took three timeouts and two re-check pauses; the live one kept its rounds going.
    live_rounds = [s for s in recorder.samples if s["device"] == "rally-bar" and s["metric"] == "uptime_s"]
    assert len(live_rounds) >= 5
    assert recorder.states[0]["device"] == "rally-bar"
    assert recorder.states[0]["state"] == "up"


def run_poller(devices: list[Device], poll: PollConfig, recorder: Recorder, done: Any) -> None:
    """Run the poller until ``done()`` holds (at most 120 s), then stop it and close the engines."""

    async def until_done() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(Poller(devices, poll, recorder).run(stop))
        try:
            async with asyncio.timeout(120):
                while not done():
                    await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task
            close_engine()

    asyncio.run(until_done())


def test_two_switches_with_one_v3_user_name_and_different_keys_both_stay_up(tmp_path: Path) -> None:
    keys = [("first-auth-key", "first-priv-key"), ("second-auth-key", "second-priv-key")]
    switches = [
        SnmpSwitch(
            tmp_path, [SwitchPort(5, "gi1/0/5")], name=f"switch-{n}", v3_auth_key=auth, v3_priv_key=priv
        )
        for n, (auth, priv) in enumerate(keys)
    ]
    for switch in switches:
        switch.start()
    try:
        devices = [
            Device(
                f"tap-{n}",
                [
                    build(
                        options(
                            switch, **{**V3, "auth_key": switch.v3_auth_key, "priv_key": switch.v3_priv_key}
                        )
                    )
                ],
            )
            for n, switch in enumerate(switches)
        ]
        recorder = Recorder()
        rounds = 61  # a minute of polling, a round a second, the two switches' polls interleaved

        def polled() -> bool:
            counts = [
                sum(1 for s in recorder.samples if s["device"] == d.id and s["metric"] == "uptime_s")
                for d in devices
            ]
            return min(counts) >= rounds

        run_poller(devices, PollConfig(interval=1.0, recheck_count=0), recorder, polled)
    finally:
        for switch in switches:
            switch.stop()
    # Every round of both answered: one state each, up, never a flap.
    assert [(s["device"], s["state"]) for s in recorder.states] in (
        [("tap-0", "up"), ("tap-1", "up")],
        [("tap-1", "up"), ("tap-0", "up")],
    )
    assert all(d.state.checks[0].ok and not d.state.checks[0].inconclusive for d in devices)
    assert not [e for e in recorder.events if e["type"] != "state-changed"]


def test_a_sysuptime_wrap_through_the_poller_is_no_reboot(switch: SnmpSwitch) -> None:
    wrap_s = 2**32 / 100
    switch.boot_time = time.time() - (wrap_s - 3.0)  # sysUpTime 3 s before its 32-bit wrap (497 days)
    switch.write_state()
    device = Device("rally-bar", [build(options(switch))])
    recorder = Recorder()

    def uptimes() -> list[float]:
        return [s["value"] for s in recorder.samples if s["metric"] == "uptime_s"]

    def two_rounds_after_the_wrap() -> bool:
        return sum(1 for u in uptimes() if u > wrap_s) >= 2

    run_poller([device], PollConfig(interval=1.0, recheck_count=0), recorder, two_rounds_after_the_wrap)
    assert uptimes()[0] < wrap_s < uptimes()[-1]
    assert uptimes() == sorted(uptimes())  # it went on growing: 497 days and more
    assert not [e for e in recorder.events if e["type"] == "reboot"]
