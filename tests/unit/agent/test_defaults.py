"""A device that lists no checks gets its model's default checks, by one small rule; explicit checks win."""

from typing import Any

import pytest

from agent.catalog import MODELS
from agent.config import AgentConfig
from agent.drivers import DRIVERS
from common.configfile import ConfigError, parse_model


def device(**fields: Any) -> Any:
    config = parse_model("agent.yaml", {"site": "s", "agent": "a", "devices": [fields]}, AgentConfig, DRIVERS)
    return config.devices[0]


def drivers_of(**fields: Any) -> list[str]:
    return [check.driver for check in device(**fields).checks]


def error_of(**fields: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        device(**fields)
    return str(caught.value)


def test_every_model_has_default_checks_of_known_drivers() -> None:
    for model in MODELS.values():
        assert model.default_checks, model.id
        assert set(model.default_checks) <= set(DRIVERS), model.id


def test_a_rally_bar_with_an_address_gets_its_admin_page_and_pings() -> None:
    checks = device(id="bar", model="rally-bar", address="192.0.2.10").checks
    assert [(c.driver, getattr(c, "url", None) or c.host) for c in checks] == [
        ("https", "https://192.0.2.10/"),
        ("icmp", "192.0.2.10"),
    ]


def test_a_rally_bar_without_an_address_is_watched_on_usb() -> None:
    assert drivers_of(id="bar", model="rally-bar") == ["usb"]


def test_an_ipv6_address_is_bracketed_in_the_url() -> None:
    checks = device(id="tap", model="tap-ip", address="2001:db8::5").checks
    assert checks[0].url == "https://[2001:db8::5]/"


def test_a_meetup_is_watched_on_usb() -> None:
    assert drivers_of(id="m", model="meetup") == ["usb"]


def test_the_room_pc_gets_the_host_check() -> None:
    assert drivers_of(id="pc", model="room-pc") == ["host"]


def test_explicit_checks_are_never_mixed_with_defaults() -> None:
    checks = [{"driver": "icmp", "host": "192.0.2.10"}]
    assert drivers_of(id="bar", model="rally-bar", address="192.0.2.10", checks=checks) == ["icmp"]


def test_a_network_only_model_without_an_address_says_to_give_one() -> None:
    assert error_of(id="tap", model="tap-ip") == (
        "agent.yaml: devices[0]: no 'checks' listed and no default check of model 'tap-ip' (https, icmp) "
        "applies: give its 'address' (IP or host name)"
    )


def test_a_model_with_unpublished_usb_ids_says_to_list_them() -> None:
    assert error_of(id="cam", model="rally-camera").endswith(
        "its USB ids are not published: list a usb check with its 'functions'"
    )


def test_an_empty_checks_list_is_still_refused() -> None:
    assert "devices[0].checks" in error_of(id="m", model="meetup", checks=[])
