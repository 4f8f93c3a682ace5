"""The Mosquitto configs hezo ships: anonymous access only on loopback, and production closed and bounded."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "config").glob("mosquitto*.conf"))
PRODUCTION = ROOT / "config" / "mosquitto.production.conf"


def settings(path: Path) -> list[tuple[str, str]]:
    """``(name, value)`` of each setting, in order; comments and blank lines left out."""
    found = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            found.append((name, value.strip()))
    return found


def one(path: Path, name: str) -> str:
    [value] = [value for key, value in settings(path) if key == name]
    return value


@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.name)
def test_anonymous_access_is_shipped_only_on_loopback_listeners(path: Path) -> None:
    if one(path, "allow_anonymous") == "false":
        return
    listeners = [value for key, value in settings(path) if key == "listener"]
    assert listeners, "a config without a listener would listen everywhere"
    assert all(value.split()[1:] == ["127.0.0.1"] for value in listeners), listeners


def test_production_refuses_anonymous_clients_and_speaks_only_tls() -> None:
    assert one(PRODUCTION, "allow_anonymous") == "false"
    assert one(PRODUCTION, "per_listener_settings") == "false"  # one rule for every listener
    assert [value for key, value in settings(PRODUCTION) if key == "listener"] == ["8883"]
    assert one(PRODUCTION, "certfile")
    assert one(PRODUCTION, "tls_version") == "tlsv1.2"
    assert one(PRODUCTION, "plugin").endswith("mosquitto_dynamic_security.so")
    assert one(PRODUCTION, "plugin_opt_config_file")


def test_production_bounds_what_it_holds_for_a_stalled_collector() -> None:
    assert 0 < int(one(PRODUCTION, "max_queued_bytes")) <= 1024**3
    assert int(one(PRODUCTION, "max_queued_messages")) > 0
    assert int(one(PRODUCTION, "max_packet_size")) >= 1024 * 1024  # a 1 MiB payload and its topic fit
    assert one(PRODUCTION, "persistence") == "true"
