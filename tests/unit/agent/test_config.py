"""The agent refuses a bad config at start-up and says which file, which key, and what was expected."""

import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import load_config
from agent.drivers import DRIVERS
from common.configfile import ConfigError

ROOT = Path(__file__).resolve().parents[3]

GOOD = """\
site: acme-warsaw
agent: room-101
contract: HZ-2026-0042
devices:
  - id: rally-bar-1
    model: rally-bar
    serial: 2034FH1002R2
    checks:
      - driver: https
        url: https://192.0.2.10/
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_good_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.devices[0].id == "rally-bar-1"
    assert config.contract_of(config.devices[0]) == "HZ-2026-0042"
    assert config.mqtt.port == 1883
    assert config.poll.recheck_count == 2


def test_an_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("        url:", "        timout: 3\n        url:"))
    assert error_of(path) == (
        f"{path}: devices[0].checks[0].timout: unknown key (a typo, or an option that does not exist here)"
    )


def test_an_unknown_driver_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("driver: https", "driver: htps"))
    known = ", ".join(repr(name) for name in DRIVERS)  # every registered driver, in registry order
    assert error_of(path) == f"{path}: devices[0].checks[0].driver: expected one of {known} (got 'htps')"


def test_a_plain_http_url_is_refused_for_the_https_driver(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("https://192.0.2.10/", "http://192.0.2.10/"))
    message = error_of(path)
    assert message.startswith(f"{path}: devices[0].checks[0].url: expected an https:// URL")
    assert "(got 'http://192.0.2.10/')" in message


def test_an_id_that_could_inject_a_topic_level_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("id: rally-bar-1", "id: rally/#"))
    assert f"{path}: devices[0].id: device id 'rally/#' is invalid" in error_of(path)


def test_an_unknown_model_lists_the_catalog(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("model: rally-bar", "model: rallybar"))
    message = error_of(path)
    assert f"{path}: devices[0].model: unknown model; expected one of meetup, rally," in message


def test_a_missing_required_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("site: acme-warsaw\n", ""))
    assert error_of(path) == f"{path}: site: required key is missing"


def test_duplicate_device_ids_are_refused(tmp_path: Path) -> None:
    device = GOOD[GOOD.index("  - id:") :]
    path = write(tmp_path, GOOD + device)
    assert "device id 'rally-bar-1' appears more than once" in error_of(path)


def test_broken_yaml_names_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "site: [unclosed\n")
    assert error_of(path).startswith(f"{path}: not valid YAML at line 2 column 1")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: file not found"


def test_every_error_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace("driver: https", "driver: htps").replace("site: acme-warsaw", "site: ACME")
    )
    lines = error_of(path).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: site: site id 'ACME' is invalid")


def test_the_command_line_exits_2_with_the_error_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("model: rally-bar", "model: rallybar"))
    run = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 2
    assert f"{path}: devices[0].model: unknown model" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("sample", sorted((ROOT / "config").glob("agent*.yaml")), ids=lambda p: p.name)
def test_every_shipped_agent_sample_is_valid(sample: Path) -> None:
    config = load_config(sample)
    assert config.devices


def test_a_bad_password_value_is_not_echoed_in_the_error(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("devices:", "mqtt:\n  password: 123456789\ndevices:"))
    message = error_of(path)
    assert message == f"{path}: mqtt.password: Input should be a valid string"
    assert "123456789" not in message


def test_an_snmp_community_value_is_not_echoed_in_the_error(tmp_path: Path) -> None:
    check = "      - driver: snmp\n        host: 192.0.2.1\n        if_index: 5\n        community: 8675309\n"
    path = write(tmp_path, GOOD.replace("      - driver: https\n", check + "      - driver: https\n"))
    message = error_of(path)
    assert "community" in message
    assert "8675309" not in message


def test_a_usb_check_for_a_model_without_published_ids_must_list_them(tmp_path: Path) -> None:
    text = GOOD.replace("model: rally-bar", "model: rally-camera").replace(
        "      - driver: https\n        url: https://192.0.2.10/\n", "      - driver: usb\n"
    )
    path = write(tmp_path, text)
    assert error_of(path) == (
        f"{path}: devices[0]: checks[0]: the USB ids of model 'rally-camera' are not published; "
        "list them under 'functions'"
    )


def test_a_usb_check_with_only_optional_functions_is_refused(tmp_path: Path) -> None:
    text = GOOD.replace(
        "      - driver: https\n        url: https://192.0.2.10/\n",
        "      - driver: usb\n        functions: [{id: '046d:0999', required: false}]\n",
    )
    path = write(tmp_path, text)
    assert (
        error_of(path) == f"{path}: devices[0]: checks[0].functions: at least one function must be required"
    )


def test_a_ca_file_that_is_not_a_certificate_is_refused_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "device-ca.pem"
    junk.write_text("not a certificate\n")
    path = write(tmp_path, GOOD.replace("        url:", f"        ca_file: {junk}\n        url:"))
    assert error_of(path).startswith(
        f"{path}: devices[0].checks[0].ca_file: {junk} is not a PEM certificate file"
    )


def test_broker_tls_files_are_loaded_at_start(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("junk\n")
    path = write(tmp_path, GOOD.replace("devices:", f"mqtt:\n  tls:\n    ca_file: {junk}\ndevices:"))
    assert error_of(path).startswith(f"{path}: mqtt.tls: cannot load the TLS files:")


def test_log_format_and_the_metrics_endpoint_are_read(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD + "log_format: json\nmetrics:\n  listen: 127.0.0.1:9311\n"))
    assert config.log_format == "json"
    assert config.metrics is not None
    assert (config.metrics.host, config.metrics.port) == ("127.0.0.1", 9311)


def test_without_the_metrics_section_the_endpoint_is_off(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).metrics is None


def test_an_unknown_log_format_names_the_key_and_the_choices(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD + "log_format: xml\n"))
    assert "agent.yaml: log_format:" in message
    assert "'text' or 'json'" in message


def test_a_bad_metrics_listen_names_the_key(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, GOOD + "metrics:\n  listen: localhost\n"))
    assert "agent.yaml: metrics.listen:" in message
    assert "expected HOST:PORT" in message
