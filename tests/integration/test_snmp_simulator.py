"""The simulated PoE switch: the Rally Bar's power and the switch faults, seen through the snmp driver."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import AgentConfig
from agent.drivers.base import CheckResult
from agent.drivers.snmp import SnmpOptions, build, close_engine
from simulator.agentconfig import agent_config_for
from simulator.site import SimulatedSite

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimulatedSite]:
    running = SimulatedSite(tmp_path / "state", switch=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def rally_bar_snmp_check(site: SimulatedSite) -> dict[str, Any]:
    config = agent_config_for(site.status(), broker_host="127.0.0.1", broker_port=1883)
    rally_bar = next(d for d in config["devices"] if d["id"] == "rally-bar")
    return next(c for c in rally_bar["checks"] if c["driver"] == "snmp")


def poll(site: SimulatedSite, **extra: Any) -> CheckResult:
    options = SnmpOptions.model_validate({**rally_bar_snmp_check(site), **extra})

    async def once() -> CheckResult:
        try:
            return await build(options).poll()
        finally:
            close_engine()

    return asyncio.run(once())


def test_the_agent_config_watches_the_rally_bar_port_and_not_the_switch(site: SimulatedSite) -> None:
    config = agent_config_for(site.status(), broker_host="127.0.0.1", broker_port=1883)
    AgentConfig.model_validate(config)  # a config the agent accepts
    assert [d["id"] for d in config["devices"]] == ["rally-bar", "meetup", "rally"]
    rally_bar = config["devices"][0]
    assert [c["driver"] for c in rally_bar["checks"]] == ["https", "snmp"]
    assert rally_bar["checks"][1]["version"] == "3"


def test_the_rally_bar_port_is_up_over_snmpv3(site: SimulatedSite) -> None:
    result = poll(site)
    assert result.ok, result.detail
    assert result.detail == "port ifIndex 5 link up, PoE deliveringPower"


def test_powering_the_rally_bar_off_takes_its_port_down(site: SimulatedSite) -> None:
    site.power("rally-bar", on=False)
    result = poll(site)
    assert not result.ok
    assert result.detail == "port ifIndex 5 link down, PoE searching"


def test_port_off_disables_poe_and_restore_brings_it_back(site: SimulatedSite) -> None:
    described = site.fault("poe-switch", "port-off")
    assert described["faults"] == ["port-off"]
    assert poll(site).detail == "port ifIndex 5 link down, PoE disabled"
    site.fault("poe-switch", "restore")
    assert poll(site).ok


def test_a_poe_fault_is_degraded(site: SimulatedSite) -> None:
    site.fault("poe-switch", "poe-fault")
    result = poll(site)
    assert result.ok
    assert result.degraded


def test_reboot_starts_the_uptime_again(site: SimulatedSite) -> None:
    switch = site._switch
    assert switch is not None
    switch.switch.boot_time -= 600
    switch.switch.write_state()
    before = poll(site).metrics["uptime_s"]
    site.fault("poe-switch", "reboot")
    after = poll(site).metrics["uptime_s"]
    assert before >= 600
    assert after < 60


def test_firmware_changes_the_reported_firmware(site: SimulatedSite) -> None:
    before = poll(site).facts["firmware"]
    site.fault("poe-switch", "firmware")
    after = poll(site).facts["firmware"]
    assert before != after


def test_a_powered_off_switch_does_not_answer(site: SimulatedSite) -> None:
    site.power("poe-switch", on=False)
    result = poll(site, timeout=0.3, retries=0)
    assert not result.ok
    assert result.detail.startswith("no answer within 0.3 s")
    site.power("poe-switch", on=True)
    assert poll(site).ok


def test_an_unstable_switch_misses_answers(site: SimulatedSite) -> None:
    site.fault("poe-switch", "unstable", seconds=1.5)
    results = [poll(site, timeout=0.5, retries=0) for _ in range(4)]
    assert any(not r.ok and r.detail.startswith("no answer") for r in results)
