"""The collector's config file: defaults that work without a file, strict keys, precise errors."""

from pathlib import Path

import pytest

from collector.config import load_config
from common.configfile import ConfigError


def test_no_file_gives_working_defaults() -> None:
    config = load_config(None)
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.client_id) == (
        "127.0.0.1",
        1883,
        "hezo-collector",
    )
    assert config.mqtt.prefix == "hezo/v1"
    assert config.mqtt.password is None
    assert config.store.url == "sqlite:///hezo-collector.db"
    assert (config.incidents.confirm_window, config.incidents.evaluate_every) == (15.0, 1.0)
    assert config.sla.priorities["critical"].response_hours == 1
    assert config.incidents.reopen_window == 86400
    assert config.mqtt.keepalive == 30
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)


def test_file_overrides_only_the_keys_it_names(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("incidents:\n  confirm_window: 5\nweb:\n  port: 9000\n")
    config = load_config(path)
    assert config.incidents.confirm_window == 5.0
    assert config.web.port == 9000
    assert config.mqtt.port == 1883


def test_negative_window_names_file_and_key_path(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("incidents:\n  confirm_window: -1\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: incidents.confirm_window: ")
    assert "greater than 0" in str(error.value)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  hots: broker.example\n")
    with pytest.raises(ConfigError, match=r"mqtt\.hots: unknown key"):
        load_config(path)


def test_empty_client_id_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  client_id: ''\n")
    with pytest.raises(ConfigError, match=r"mqtt\.client_id"):
        load_config(path)


def test_password_is_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  username: collector\n  password: s3cret-pw\n")
    config = load_config(path)
    assert config.mqtt.password is not None
    assert config.mqtt.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(config)
    assert "s3cret-pw" not in config.model_dump_json()


def test_bad_prefix_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("mqtt:\n  prefix: 'hezo/#'\n")
    with pytest.raises(ConfigError, match=r"mqtt\.prefix: .*may not contain"):
        load_config(path)


def test_the_shipped_collector_sample_is_valid() -> None:
    sample = Path(__file__).resolve().parents[3] / "config" / "collector.example.yaml"
    config = load_config(sample)
    assert config.incidents.confirm_window == 15


@pytest.mark.parametrize(("value", "why"), [("0.5", "valid integer"), ("4", "greater than or equal to 5")])
def test_keepalive_must_be_a_whole_number_of_at_least_5_seconds(tmp_path: Path, value: str, why: str) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"mqtt:\n  keepalive: {value}\n")
    with pytest.raises(ConfigError, match=rf"mqtt\.keepalive: .*{why}"):
        load_config(path)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://hezo:s3cret-pw@db:notaport/hezo", "not a SQLAlchemy URL"),
        ("mysqlish://hezo:s3cret-pw@db/hezo", "unknown database type 'mysqlish'"),
    ],
)
def test_bad_store_url_names_the_key_and_hides_the_password(tmp_path: Path, url: str, why: str) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(f"store:\n  url: '{url}'\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: store.url: {why}")
    assert "s3cret-pw" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ("default_site:\n  timezone: Mars/Olympus\n", "default_site.timezone", "unknown time zone"),
        ("sites:\n  hq:\n    hours: '16:00-08:00'\n", "sites.hq.hours", "must end after they start"),
        ("sites:\n  hq:\n    holidays: XX\n", "sites.hq.holidays", "no public holidays known"),
        (
            "contracts:\n  - {number: A, start: 2026-01-01, years: 6}\n",
            "contracts[0].years",
            "less than or equal to 5",
        ),
        (
            "maintenance:\n  - {name: n, site: hq, days: [mon], start: '22:00'}\n",
            "maintenance[0]",
            "needs days, start and end",
        ),
        (
            "sla:\n  priorities:\n    high: {window: 7x24, response_hours: 1, update_hours: 2}\n",
            "sla.priorities.high.window",
            "",
        ),
        ("store:\n  batch_wait_ms: 5000\n", "store.batch_wait_ms", "less than or equal to 1000"),
        ("store:\n  batch_wait_ms: 0.5\n", "store.batch_wait_ms", "valid integer"),
    ],
)
def test_bad_incident_sla_and_site_keys_name_the_key_and_the_reason(
    tmp_path: Path, text: str, where: str, why: str
) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: {where}")
    assert why in str(error.value)


def test_a_partial_sla_table_keeps_the_terms_for_the_other_priorities(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("sla:\n  priorities:\n    low: {window: 8x5, response_hours: 1, update_hours: 4}\n")
    config = load_config(path)
    assert config.sla.priorities["low"].response_hours == 1
    assert config.sla.priorities["critical"].window == "24x7"


def test_broker_logins_for_agents_need_the_collectors_own_login(tmp_path: Path) -> None:
    path = tmp_path / "collector.yaml"
    path.write_text("enrolment:\n  broker: dynamic-security\n")
    with pytest.raises(ConfigError, match=r"dynamic-security needs the collector's own broker login"):
        load_config(path)
