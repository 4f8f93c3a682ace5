"""The snmp driver against recordings of real switches served by snmpsim: Cisco, Huawei, Brocade, D-Link, H3C
and HPE answer as they did when recorded. Link, admin status, uptime, firmware, and the PoE none of them
exposes (no POWER-ETHERNET-MIB rows): each case asserts the state and the reason a user would see."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.snmp import SnmpOptions, build, close_engine
from tests.support import snmpsim

pytestmark = pytest.mark.integration

NO_POE = "PoE not readable on this switch (no POWER-ETHERNET-MIB port rows)"


@pytest.fixture(scope="module")
def responder() -> Iterator[snmpsim.Snmpsim]:
    why = snmpsim.missing()
    if why is not None:
        pytest.fail(why)
    running = snmpsim.Snmpsim()
    running.start()
    try:
        yield running
    finally:
        running.stop()


def poll(responder: snmpsim.Snmpsim, recording: str, **port: Any) -> CheckResult:
    options = SnmpOptions.model_validate(
        {"driver": "snmp", "host": responder.host, "port": responder.port, "community": recording, **port}
    )

    async def once() -> CheckResult:
        try:
            return await build(options).poll()
        finally:
            close_engine()

    return asyncio.run(once())


def test_cisco_c3750_port_up_by_its_short_name_in_lower_case(responder: snmpsim.Snmpsim) -> None:
    result = poll(responder, "cisco-c3750", if_name="gi1/0/1")
    assert (result.ok, result.degraded, result.inconclusive) == (True, False, False)
    assert result.detail == f"port gi1/0/1 link up; {NO_POE}"
    assert result.facts["firmware"] == (
        "Cisco IOS Software, C3750 Software (C3750-IPBASE-M), Version 12.2(50)SE5, RELEASE SOFTWARE (fc1)"
    )
    assert result.metrics["uptime_s"] == 38969789.21  # 451 days: read right, 46 days before the 32-bit wrap
    assert "power_mw" not in result.metrics


def test_cisco_c3750_port_by_its_ifdescr_and_by_its_alias(responder: snmpsim.Snmpsim) -> None:
    assert poll(responder, "cisco-c3750", if_name="GigabitEthernet1/0/1").detail.startswith(
        "port GigabitEthernet1/0/1 link up"
    )
    assert poll(responder, "cisco-c3750", if_name="dj_200_poe").detail.startswith("port dj_200_poe link up")


def test_cisco_c3750_port_with_its_link_down_is_down(responder: snmpsim.Snmpsim) -> None:
    result = poll(responder, "cisco-c3750", if_name="Gi1/0/2")
    assert (result.ok, result.inconclusive) == (False, False)
    assert result.detail == "port Gi1/0/2 link down"


def test_cisco_c3750_unknown_port_name_is_inconclusive_with_the_nearest_names(
    responder: snmpsim.Snmpsim,
) -> None:
    result = poll(responder, "cisco-c3750", if_name="Gi1/0/13")
    assert result.inconclusive
    assert result.detail.startswith(
        "no interface named 'Gi1/0/13' on the switch (ifName, ifDescr, ifAlias, any"
    )
    assert result.detail.endswith("nearest: Gi1/0/3, Gi1/0/1, Gi1/0/12, Gi1/0/11, Gi1/0/10")


def test_cisco_c3560_administratively_down_and_a_multi_line_sysdescr(responder: snmpsim.Snmpsim) -> None:
    result = poll(responder, "cisco-c3560", if_name="Vl1")
    assert (result.ok, result.inconclusive) == (False, False)
    assert result.detail == "port Vl1 link down: port administratively down"
    assert result.facts["firmware"] == (
        "Cisco IOS Software, C3560 Software (C3560-IPSERVICESK9-M), Version 12.2(55)SE3, "
        "RELEASE SOFTWARE (fc1)"
    )


def test_huawei_s5720_link_up_and_down_and_its_three_line_sysdescr(responder: snmpsim.Snmpsim) -> None:
    up = poll(responder, "huawei-s5720", if_name="gigabitethernet0/0/1")
    assert up.ok
    assert up.detail == f"port gigabitethernet0/0/1 link up; {NO_POE}"
    assert up.facts["firmware"] == (
        "S5720-36C-EI-AC; Huawei Versatile Routing Platform Software; "
        "VRP (R) software,Version 5.160 (S5720 V200R007C00SPC500)"
    )
    assert "\r" not in up.facts["firmware"]
    assert up.metrics["uptime_s"] == 17470829.7
    down = poll(responder, "huawei-s5720", if_name="GigabitEthernet0/0/3")
    assert (down.ok, down.detail) == (False, "port GigabitEthernet0/0/3 link down")


def test_brocade_icx6430_ports_by_ifname_and_ifdescr(responder: snmpsim.Snmpsim) -> None:
    up = poll(responder, "brocade-icx6430-24", if_name="ethernet1/1/1")
    assert (up.ok, up.detail) == (True, f"port ethernet1/1/1 link up; {NO_POE}")
    assert up.facts["firmware"].startswith(
        "Brocade Communications Systems, Inc. ICX6430-24, IronWare Version"
    )
    assert up.metrics["uptime_s"] == 0.0  # recorded as 0 ticks
    down = poll(responder, "brocade-icx6430-24", if_name="GigabitEthernet1/1/2")
    assert (down.ok, down.detail) == (False, "port GigabitEthernet1/1/2 link down")


def test_dlink_des3200_port_by_its_quoted_alias(responder: snmpsim.Snmpsim) -> None:
    result = poll(responder, "dlink-des3200", if_name="admin-port")  # recorded as '"admin-port"'
    assert (result.ok, result.detail) == (True, f"port admin-port link up; {NO_POE}")
    assert result.facts["firmware"] == "DES-3200-18 Fast Ethernet Switch"
    assert poll(responder, "dlink-des3200", if_index=18).detail == "port ifIndex 18 link down"


def test_h3c_e528_port_up_and_its_sysdescr_without_the_copyright(responder: snmpsim.Snmpsim) -> None:
    result = poll(responder, "h3c-e528-1", if_name="GigabitEthernet1/0/24")
    assert (result.ok, result.detail) == (True, f"port GigabitEthernet1/0/24 link up; {NO_POE}")
    assert result.facts["firmware"] == "H3C Switch E528 Software Version 5.20, Release 1513P62"
    assert poll(responder, "h3c-e528-1", if_index=1).detail == "port ifIndex 1 link down"


def test_hpe_procurve_admin_down_port_and_a_long_sysdescr_cut_to_a_fact(responder: snmpsim.Snmpsim) -> None:
    down = poll(responder, "hpe-procurve-516733-b21", if_index=6)
    assert (down.ok, down.detail) == (False, "port ifIndex 6 link down: port administratively down")
    up = poll(responder, "hpe-procurve-516733-b21", if_name="1")
    assert (up.ok, up.detail) == (True, f"port 1 link up; {NO_POE}")
    firmware = up.facts["firmware"]
    assert firmware.startswith("ProCurve 516733-B21 6120XG Blade Switch, revision Z.14.31, ROM Z.14.09")
    assert len(firmware) <= 128  # what the collector accepts for a fact
    assert up.metrics["uptime_s"] == 31106978.28


def test_snmpv3_with_a_context_name_reads_the_recording_it_names(responder: snmpsim.Snmpsim) -> None:
    v3 = {
        "version": "3",
        "user": snmpsim.V3_USER,
        "auth_protocol": "sha",
        "auth_key": snmpsim.V3_AUTH_KEY,
        "priv_protocol": "aes",
        "priv_key": snmpsim.V3_PRIV_KEY,
    }
    options = SnmpOptions.model_validate(
        {"driver": "snmp", "host": responder.host, "port": responder.port, **v3, "if_name": "Gi1/0/1"}
        | {"context": "cisco-c3750"}
    )

    async def once() -> CheckResult:
        try:
            return await build(options).poll()
        finally:
            close_engine()

    result = asyncio.run(once())
    assert result.ok, result.detail
    assert result.detail == f"port Gi1/0/1 link up; {NO_POE}"
    assert result.metrics["uptime_s"] == 38969789.21
