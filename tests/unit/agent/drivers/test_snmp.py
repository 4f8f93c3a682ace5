"""The snmp driver's options (validated without I/O) and its verdict on what a switch answered."""

import asyncio
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pysnmp.proto.rfc1902 import Gauge32, Integer, OctetString, TimeTicks
from pysnmp.proto.rfc1905 import NoSuchInstance

from agent.config import load_config
from agent.drivers import DRIVERS
from agent.drivers.base import CheckResult
from agent.drivers.snmp import SnmpOptions, SnmpProbe

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


def judged(values: list[Any], **extra: Any) -> CheckResult:
    probe = SnmpProbe(SnmpOptions.model_validate({**V2C, **extra}))

    async def answered() -> list[Any]:
        return values

    probe._read = answered  # type: ignore[method-assign]  # the switch's answer, without a switch
    return asyncio.run(probe.poll())


def answer(admin: int = 1, oper: int = 1, poe: int = 3, power: int = 12950) -> list[Any]:
    descr = OctetString(b"Switch OS 1.2")
    return [TimeTicks(123456), descr, Integer(admin), Integer(oper), Integer(poe), Gauge32(power)]


def test_link_up_and_power_delivered_is_up_with_metrics_and_firmware() -> None:
    result = judged(answer())
    assert result.ok
    assert not result.degraded
    assert result.metrics["uptime_s"] == 1234.56
    assert result.metrics["power_mw"] == 12950
    assert result.facts == {"firmware": "Switch OS 1.2"}


def test_link_down_is_down() -> None:
    result = judged(answer(oper=2, poe=2, power=0))
    assert not result.ok
    assert result.detail == "port ifIndex 5 link down, PoE searching"


def test_an_administratively_down_port_says_so() -> None:
    result = judged(answer(admin=2, oper=2))
    assert not result.ok
    assert result.detail.endswith("port administratively down")


def test_a_poe_fault_with_link_up_is_degraded() -> None:
    result = judged(answer(poe=6))
    assert result.ok
    assert result.degraded
    assert "PoE otherFault" in result.detail


def test_a_poe_fault_with_link_down_is_down() -> None:
    result = judged(answer(oper=2, poe=4))
    assert not result.ok


def test_searching_with_link_up_is_not_delivering_power() -> None:
    result = judged(answer(poe=2))
    assert not result.ok
    assert result.detail.endswith("not delivering power")


def test_a_switch_without_per_port_power_reports_no_power() -> None:
    values = answer()
    values[5] = NoSuchInstance()
    result = judged(values)
    assert result.ok
    assert "power_mw" not in result.metrics


def test_an_unknown_poe_port_is_a_reason() -> None:
    values = answer()
    values[4] = NoSuchInstance()
    result = judged(values, poe_port=48)
    assert not result.ok
    assert result.detail == "no PoE port 1.48 on the switch"


def test_without_poe_only_the_link_counts() -> None:
    result = judged(answer()[:4], poe=False)
    assert result.ok
    assert result.detail == "port ifIndex 5 link up"


def test_a_value_of_the_wrong_type_is_a_reason_not_an_exception() -> None:
    values = answer()
    values[3] = OctetString(b"up")
    result = judged(values)
    assert not result.ok
    assert result.detail.startswith("unexpected answer from the switch:")
