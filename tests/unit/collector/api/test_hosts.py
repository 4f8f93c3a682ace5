"""The Host allow-list and the start-up warning for a web server reachable without TLS."""

from __future__ import annotations

import pytest

from collector.api.hosts import allowed, exposure_warning, host_name
from collector.config import WebConfig
from common.configfile import ConfigError, parse_model


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8080", "127.0.0.1"),
        ("[::1]:8080", "::1"),
        ("Hezo.Example.NET", "hezo.example.net"),
        ("::1", "::1"),
    ],
)
def test_the_host_header_is_read_without_its_port(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("hezo.example.net", True),
        ("a.hezo.example.net", True),
        ("example.net", False),
        ("evilhezo.example.net", False),
    ],
)
def test_a_wildcard_takes_subdomains_only(name: str, ok: bool) -> None:
    assert allowed(name, ["*.hezo.example.net", "hezo.example.net"]) is ok


@pytest.mark.parametrize(
    ("web", "warned"),
    [
        ({}, False),
        ({"host": "localhost"}, False),
        ({"host": "0.0.0.0"}, True),
        ({"host": "192.0.2.5"}, True),
        ({"host": "0.0.0.0", "https": True}, False),
    ],
)
def test_listening_beyond_loopback_without_tls_is_warned_about(web: dict[str, object], warned: bool) -> None:
    warning = exposure_warning(WebConfig.model_validate(web))
    assert (warning is not None) is warned
    if warning is not None:
        assert "TLS reverse proxy" in warning
        assert "web.allowed_hosts" in warning


def test_a_host_with_a_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"allowed_hosts: .*a host name or address without port"):
        parse_model("collector.yaml", {"allowed_hosts": ["hezo.example.net/api"]}, WebConfig)
