"""The snmp driver's options (validated without I/O) and its verdict on what a switch answered."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.changes import ChangeWatch
from agent.config import load_config
from agent.drivers import DRIVERS
from agent.drivers.base import CheckResult
from agent.drivers.snmp import SnmpOptions, SnmpProbe
from agent.drivers.snmp.fake import FakeSession
from agent.drivers.snmp.ports import IF_ALIAS, IF_DESCR, IF_NAME, PETH_DETECTION_STATUS
from agent.drivers.snmp.probe import (
    IF_ADMIN_STATUS,
    IF_OPER_STATUS,
    SNMP_ENGINE_BOOTS,
    SNMP_ENGINE_TIME,
    SYS_DESCR,
    SYS_UPTIME,
    firmware_of,
)
from agent.drivers.snmp.session import Value, close_engine, engine, engine_count, security_key
from agent.drivers.snmp.traps import Trap

SAMPLE = Path(__file__).resolve().parents[4] / "config" / "drivers" / "snmp.example.yaml"
V2C = {"driver": "snmp", "host": "192.0.2.2", "community": "public", "if_index": 5}
V3 = {
    "driver": "snmp",
    "host": "192.0.2.2",
    "version": "3",
    "user": "hezo",
    "auth_protocol": "sha",
    "auth_key": "auth-key-1",
    "priv_protocol": "aes",
    "priv_key": "priv-key-1",
    "if_index": 5,
}


def error_of(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as info:
        SnmpOptions.model_validate(doc)
    return str(info.value)


def test_the_sample_config_loads() -> None:
    config = load_config(SAMPLE)
    drivers = [check.driver for device in config.devices for check in device.checks]
    assert drivers.count("snmp") == 2


def test_snmp_is_in_the_driver_registry() -> None:
    assert DRIVERS["snmp"].options is SnmpOptions


def test_v2c_needs_a_community() -> None:
    assert "version 2c needs a community" in error_of({**V2C, "community": None})


def test_v3_keys_are_refused_with_v2c() -> None:
    assert "user: only for version 3" in error_of({**V2C, "user": "hezo"})


def test_v3_needs_a_user() -> None:
    assert "version 3 needs a user" in error_of({**V3, "user": None})


def test_v3_refuses_a_community() -> None:
    assert "community is only for version 2c" in error_of({**V3, "community": "public"})


def test_an_auth_protocol_needs_its_key() -> None:
    assert "auth_protocol and auth_key go together" in error_of({**V3, "auth_key": None})


def test_privacy_needs_authentication() -> None:
    doc = {**V3, "auth_protocol": None, "auth_key": None}
    assert "priv_protocol needs auth_protocol" in error_of(doc)


def test_keys_shorter_than_eight_characters_are_refused() -> None:
    assert "priv_key: at least 8 characters" in error_of({**V3, "priv_key": "short"})


def test_an_unknown_auth_protocol_is_refused() -> None:
    assert "auth_protocol" in error_of({**V3, "auth_protocol": "sha3"})


def test_exactly_one_of_if_index_and_if_name() -> None:
    assert "exactly one of if_index and if_name" in error_of({**V2C, "if_name": "gi1/0/5"})
    assert "exactly one of if_index and if_name" in error_of({**V2C, "if_index": None})


def test_the_power_oid_must_be_numeric() -> None:
    assert "numeric OID" in error_of({**V2C, "power_oid": "cpeExtPsePortPwrConsumption"})


def test_secrets_do_not_show_in_the_options() -> None:
    shown = repr(SnmpOptions.model_validate(V3)) + repr(SnmpOptions.model_validate(V2C))
    assert "auth-key-1" not in shown
    assert "priv-key-1" not in shown
    assert "public" not in shown


def test_a_context_is_only_for_version_3() -> None:
    assert "context: only for version 3" in error_of({**V2C, "context": "vlan-10"})
    assert SnmpOptions.model_validate({**V3, "context": "vlan-10"}).context == "vlan-10"


def test_v3_checks_share_an_engine_only_with_the_same_keys() -> None:
    one = SnmpOptions.model_validate(V3)
    same = SnmpOptions.model_validate({**V3, "host": "192.0.2.3"})
    other_keys = SnmpOptions.model_validate({**V3, "host": "192.0.2.3", "auth_key": "auth-key-2"})
    assert security_key(one) == security_key(same)
    assert security_key(one) != security_key(other_keys)
    assert security_key(SnmpOptions.model_validate(V2C)) == ("v2c",)


def test_checks_share_an_engine_unless_one_user_name_comes_with_two_sets_of_keys() -> None:
    first = SnmpOptions.model_validate(V3)
    other_user = SnmpOptions.model_validate({**V3, "user": "second", "auth_key": "auth-key-2"})
    same_user_other_keys = SnmpOptions.model_validate({**V3, "auth_key": "auth-key-3"})
    other_user_other_keys = SnmpOptions.model_validate({**V3, "user": "second", "auth_key": "auth-key-4"})

    async def engines() -> tuple[list[object], int]:
        try:
            made = [
                engine(security_key(options))
                for options in (
                    SnmpOptions.model_validate(V2C),
                    first,
                    other_user,
                    same_user_other_keys,
                    other_user_other_keys,
                    first,
                    other_user,
                )
            ]
            return made, engine_count()
        finally:
            close_engine()

    made, count = asyncio.run(engines())
    v2c, one, two, three, four, one_again, two_again = made
    assert v2c is one is two  # a community and two users side by side in one engine
    assert three is not one  # the same user with other keys would overwrite the first's
    assert four is three  # the second engine has no "second" user yet
    assert one_again is one
    assert two_again is two
    assert count == 2


POWER = "1.3.6.1.4.1.9.9.402.1.2.1.9"


def switch(
    *,
    admin: int = 1,
    oper: int = 1,
    poe: int | None = 3,
    power: int | None = 12950,
    if_index: int = 5,
    name: str = "Gi1/0/5",
    poe_index: str = "1.5",
    descr: bytes = b"Switch OS 1.2",
    uptime: int = 123456,
) -> FakeSession:
    """A switch with one port (and its PoE row at ``poe_index``, unless ``poe`` is None)."""
    objects: dict[str, Value] = {
        SYS_UPTIME: uptime,
        SYS_DESCR: descr,
        f"{IF_ADMIN_STATUS}.{if_index}": admin,
        f"{IF_OPER_STATUS}.{if_index}": oper,
        f"{IF_NAME}.{if_index}": name.encode(),
        f"{IF_DESCR}.{if_index}": name.replace("Gi", "GigabitEthernet").encode(),
        f"{IF_ALIAS}.{if_index}": b"room-101 rally bar",
    }
    if poe is not None:
        objects[f"{PETH_DETECTION_STATUS}.{poe_index}"] = poe
        if power is not None:
            objects[f"{POWER}.{poe_index}"] = power
    return FakeSession(objects)


def judged(session: FakeSession, **extra: Any) -> CheckResult:
    probe = SnmpProbe(SnmpOptions.model_validate({**V2C, **extra}), session)
    return asyncio.run(probe.poll())


def test_link_up_and_power_delivered_is_up_with_metrics_and_firmware() -> None:
    result = judged(switch())
    assert result.ok
    assert not result.degraded
    assert result.detail == "port ifIndex 5 link up, PoE deliveringPower"
    assert result.metrics["uptime_s"] == 1234.56
    assert result.metrics["power_mw"] == 12950
    assert result.facts == {"firmware": "Switch OS 1.2", "poe_port": "1.5 (from the port name Gi1/0/5)"}


def test_link_down_is_down() -> None:
    result = judged(switch(oper=2, poe=2, power=0))
    assert not result.ok
    assert not result.inconclusive
    assert result.detail == "port ifIndex 5 link down, PoE searching"


def test_an_administratively_down_port_says_so() -> None:
    result = judged(switch(admin=2, oper=2))
    assert not result.ok
    assert result.detail.endswith("port administratively down")


def test_a_link_the_switch_cannot_tell_is_inconclusive() -> None:
    result = judged(switch(oper=4))
    assert result.inconclusive
    assert result.detail.endswith("the switch does not know the link state")


def test_a_poe_fault_with_link_up_is_degraded() -> None:
    result = judged(switch(poe=6))
    assert result.ok
    assert result.degraded
    assert "PoE otherFault" in result.detail


def test_a_poe_fault_with_link_down_is_down() -> None:
    assert not judged(switch(oper=2, poe=4)).ok


def test_no_power_with_the_link_up_is_degraded_not_down() -> None:
    result = judged(switch(poe=2))
    assert result.ok
    assert result.degraded
    assert "link up but no PoE power" in result.detail


def test_a_switch_without_per_port_power_reports_no_power() -> None:
    result = judged(switch(power=None))
    assert result.ok
    assert "power_mw" not in result.metrics


def test_a_switch_without_poe_rows_is_judged_on_the_link_and_says_poe_is_not_readable() -> None:
    result = judged(switch(poe=None))
    assert result.ok
    assert not result.degraded
    assert result.detail == (
        "port ifIndex 5 link up; PoE not readable on this switch (no POWER-ETHERNET-MIB port rows)"
    )
    assert result.facts["poe_port"] == "not readable: no POWER-ETHERNET-MIB port rows"


def test_a_switch_without_poe_rows_still_reports_a_link_down() -> None:
    result = judged(switch(poe=None, oper=2))
    assert not result.ok
    assert result.detail == "port ifIndex 5 link down"


def test_a_configured_poe_port_the_switch_lacks_is_not_readable_never_down() -> None:
    result = judged(switch(), poe_port=48)
    assert result.ok
    assert result.detail == (
        "port ifIndex 5 link up; PoE not readable on this switch "
        "(no PoE port 1.48 (configured; the switch has 1.5-1.5))"
    )


def test_ciscos_poe_port_is_found_from_the_port_name_not_the_ifindex() -> None:
    session = switch(if_index=10110, name="Gi1/0/10", poe_index="1.10")
    result = judged(session, if_index=10110)
    assert result.ok, result.detail
    assert result.detail == "port ifIndex 10110 link up, PoE deliveringPower"
    assert result.facts["poe_port"] == "1.10 (from the port name Gi1/0/10)"


def test_a_poe_port_numbered_like_the_ifindex_is_found() -> None:
    session = switch(if_index=7, name="7", poe_index="1.7")
    result = judged(session, if_index=7)
    assert result.facts["poe_port"] == "1.7 (from the port name 7)"


def test_without_poe_only_the_link_counts() -> None:
    result = judged(switch(poe=None), poe=False)
    assert result.ok
    assert result.detail == "port ifIndex 5 link up"
    assert "poe_port" not in result.facts


def test_a_value_of_the_wrong_type_is_inconclusive_not_an_exception() -> None:
    session = switch()
    session.objects[f"{IF_OPER_STATUS}.5"] = b"up"
    result = judged(session)
    assert result.inconclusive
    assert result.detail.startswith("unexpected answer from the switch:")


def test_a_switch_that_does_not_answer_is_inconclusive() -> None:
    session = switch()
    session.failure = "no answer within 2 s x2 (switch down or unreachable, or wrong community)"
    result = judged(session)
    assert result.inconclusive
    assert result.detail == session.failure


def test_a_multi_line_sysdescr_is_one_clean_line() -> None:
    descr = (
        b"Cisco IOS Software, C3560 Software (C3560-IPSERVICESK9-M), Version 12.2(55)SE3, RELEASE SOFTWARE "
        b"(fc1)\r\nTechnical Support: http://www.cisco.com/techsupport\r\nCopyright (c) 1986-2011 by Cisco"
        b" Systems, Inc.\r\nCompiled Thu 05-May-11 16:14 by prod_rel_team"
    )
    firmware = firmware_of(descr)
    assert firmware == (
        "Cisco IOS Software, C3560 Software (C3560-IPSERVICESK9-M), Version 12.2(55)SE3, "
        "RELEASE SOFTWARE (fc1)"
    )
    assert firmware_of(
        b"S5720-36C-EI-AC \r\nHuawei VRP \r\n VRP (R) software,Version 5.160 \r\n Copyright"
    ) == ("S5720-36C-EI-AC; Huawei VRP; VRP (R) software,Version 5.160")


@pytest.mark.parametrize(
    ("wanted", "found_by"),
    [
        ("Gi1/0/5", "exact ifName"),
        ("gi1/0/5", "ifName"),
        ("GIGABITETHERNET1/0/5", "ifDescr"),
        ("Room-101 Rally Bar", "ifAlias"),
    ],
)
def test_a_port_is_found_by_name_description_or_alias_in_any_case(wanted: str, found_by: str) -> None:
    session = switch(if_index=10105)
    session.objects[f"{IF_NAME}.10106"] = b"Gi1/0/6"
    session.objects[f"{IF_OPER_STATUS}.10106"] = 2
    result = judged(session, if_index=None, if_name=wanted)
    assert result.ok, (found_by, result.detail)
    assert result.detail.startswith(f"port {wanted} link up")


def test_an_unknown_name_lists_the_nearest_names() -> None:
    session = switch()
    session.objects[f"{IF_NAME}.6"] = b"Gi1/0/6"
    result = judged(session, if_index=None, if_name="Gi1/0/9")
    assert result.inconclusive
    assert result.detail == (
        "no interface named 'Gi1/0/9' on the switch (ifName, ifDescr, ifAlias, any case); "
        "nearest: Gi1/0/6, Gi1/0/5"
    )


def test_a_name_shared_by_several_ports_is_refused() -> None:
    session = switch()
    session.objects[f"{IF_ALIAS}.6"] = b"room-101 rally bar"
    result = judged(session, if_index=None, if_name="room-101 rally bar")
    assert result.inconclusive
    assert (
        result.detail == "'room-101 rally bar' is the ifAlias of several ports (ifIndex 5, 6): give if_index"
    )


def test_a_port_found_by_name_is_looked_up_again_when_its_ifindex_changes() -> None:
    session = switch()
    probe = SnmpProbe(SnmpOptions.model_validate({**V2C, "if_index": None, "if_name": "Gi1/0/5"}), session)
    assert asyncio.run(probe.poll()).ok
    for column in (IF_ADMIN_STATUS, IF_OPER_STATUS, IF_NAME, IF_DESCR, IF_ALIAS):  # renumbered on restart
        session.objects[f"{column}.50"] = session.objects.pop(f"{column}.5")
    result = asyncio.run(probe.poll())
    assert result.ok, result.detail


def test_a_link_down_the_switch_announced_is_confirmed() -> None:
    session = switch(oper=2, poe=2)
    now = [100.0]
    probe = SnmpProbe(SnmpOptions.model_validate(V2C), session, clock=lambda: now[0])
    probe.traps = type("Receiver", (), {"hold": 10.0})()  # type: ignore[assignment]
    probe._traps = {"pethPsePortOnOffNotification": 99.8, "linkDown": 99.5}
    result = asyncio.run(probe.poll())
    assert not result.ok
    assert result.confirmed
    assert result.detail == "port ifIndex 5 link down, PoE searching (the switch sent linkDown 0.5 s before)"
    now[0] = 200.0  # long after the trap: a plain reading, re-checked as usual
    assert not asyncio.run(probe.poll()).confirmed


def test_a_trap_concerns_only_its_own_port() -> None:
    probe = SnmpProbe(SnmpOptions.model_validate(V2C), switch())
    assert probe.concerns(Trap("linkDown", "192.0.2.2", if_index=5))
    assert not probe.concerns(Trap("linkDown", "192.0.2.2", if_index=6))
    assert probe.concerns(Trap("coldStart", "192.0.2.2"))
    asyncio.run(probe.poll())  # now its PoE port (1.5) is known
    assert probe.concerns(Trap("pethPsePortOnOffNotification", "192.0.2.2", poe=(1, 5)))
    assert not probe.concerns(Trap("pethPsePortOnOffNotification", "192.0.2.2", poe=(1, 6)))


def rounds_of_uptime(readings: list[dict[str, int]], gaps: list[float]) -> tuple[list[float], list[str]]:
    """Poll a fake switch whose uptime figures go through ``readings``, ``gaps`` seconds apart; the uptimes
    reported and the events the poller's change watch saw in them."""
    session = switch()
    now = [1000.0]
    probe = SnmpProbe(SnmpOptions.model_validate(V2C), session, clock=lambda: now[0])
    changes = ChangeWatch("rally-bar")
    uptimes, events = [], []
    for reading, gap in zip(readings, [0.0, *gaps], strict=True):
        now[0] += gap
        session.objects.update(
            {
                SYS_UPTIME: reading["ticks"],
                SNMP_ENGINE_BOOTS: reading.get("boots"),
                SNMP_ENGINE_TIME: reading.get("engine_time"),
            }
        )
        result = asyncio.run(probe.poll())
        uptimes.append(result.metrics["uptime_s"])
        events += [event["type"] for event in changes.events([result])]
    return uptimes, events


NEAR_WRAP = 2**32 - 1000  # 10 s before sysUpTime wraps


def test_a_sysuptime_wrap_is_no_reboot_when_the_elapsed_time_says_so() -> None:
    uptimes, events = rounds_of_uptime([{"ticks": NEAR_WRAP}, {"ticks": 2000}], gaps=[30.0])
    assert events == []
    assert uptimes[1] == pytest.approx((2**32 + 2000) / 100)


def test_a_wrap_is_no_reboot_when_snmpenginetime_went_on_though_the_agent_missed_time() -> None:
    # The agent's clock saw 5 s (a suspended PC), the switch's moved on 30 s: the engine time says wrap.
    readings = [
        {"ticks": NEAR_WRAP, "boots": 7, "engine_time": 900},
        {"ticks": 2000, "boots": 7, "engine_time": 930},
    ]
    uptimes, events = rounds_of_uptime(readings, gaps=[5.0])
    assert events == []
    assert uptimes[1] > uptimes[0]


def test_a_restart_near_the_wrap_is_a_reboot_when_snmpengineboots_went_up() -> None:
    readings = [
        {"ticks": NEAR_WRAP, "boots": 7, "engine_time": 900},
        {"ticks": 2000, "boots": 8, "engine_time": 20},
    ]
    _uptimes, events = rounds_of_uptime(readings, gaps=[30.0])
    assert events == ["reboot"]


def test_an_uptime_that_drops_far_from_the_wrap_is_a_reboot() -> None:
    _uptimes, events = rounds_of_uptime([{"ticks": 360000}, {"ticks": 500}], gaps=[30.0])
    assert events == ["reboot"]


def test_after_a_wrap_a_small_jitter_is_neither_a_reboot_nor_a_lost_wrap() -> None:
    readings = [{"ticks": NEAR_WRAP}, {"ticks": 2000}, {"ticks": 1900}, {"ticks": 5000}]
    uptimes, events = rounds_of_uptime(readings, gaps=[30.0, 1.0, 30.0])
    assert events == []
    assert uptimes[3] == pytest.approx((2**32 + 5000) / 100)
