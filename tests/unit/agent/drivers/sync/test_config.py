"""The sync: section and sync checks are validated at start-up, and the sample config is valid."""

from pathlib import Path

import pytest
import yaml

from agent.config import load_config
from common.configfile import ConfigError
from simulator.pki import CertificateAuthority

ROOT = Path(__file__).resolve().parents[5]
SAMPLE = ROOT / "config" / "drivers" / "sync.example.yaml"


@pytest.fixture
def certs(tmp_path: Path) -> dict[str, str]:
    ca = CertificateAuthority(tmp_path / "ca.pem", "test CA")
    ca.issue(tmp_path / "cert.pem", tmp_path / "key.pem", common_name="sync client", server=False)
    return {"cert_file": str(tmp_path / "cert.pem"), "key_file": str(tmp_path / "key.pem")}


def write(tmp_path: Path, doc: dict[str, object]) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def sample_with(certs: dict[str, str]) -> dict[str, object]:
    """The sample as a user would have it: every key as shipped, the certificate files their own."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["sync"].update(certs)
    return doc


def test_the_sample_config_is_valid(tmp_path: Path, certs: dict[str, str]) -> None:
    config = load_config(write(tmp_path, sample_with(certs)))
    assert config.sync is not None
    assert config.sync.page_size == 1000
    assert [check.driver for device in config.devices for check in device.checks] == ["sync", "sync"]


def test_a_sync_check_without_the_sync_section_is_refused(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    del doc["sync"]
    with pytest.raises(ConfigError, match=r"devices\[0\]\.checks\[0\]: a sync check needs the sync: section"):
        load_config(write(tmp_path, doc))


def test_a_sync_check_needs_a_serial_or_a_device_id(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    del doc["devices"][0]["serial"]  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"devices\[0\]\.checks\[0\]: give serial or device_id"):
        load_config(write(tmp_path, doc))


def test_the_sync_section_requires_the_client_certificate(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    del doc["sync"]["cert_file"]  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="sync: cert_file and key_file are required"):
        load_config(write(tmp_path, doc))


def test_a_key_that_is_not_the_certificates_is_refused(tmp_path: Path, certs: dict[str, str]) -> None:
    other = CertificateAuthority(tmp_path / "other-ca.pem", "other CA")
    other.issue(tmp_path / "c2.pem", tmp_path / "k2.pem", common_name="x", server=False)
    doc = sample_with({**certs, "key_file": str(tmp_path / "k2.pem")})
    with pytest.raises(ConfigError, match="sync: cannot load the TLS files"):
        load_config(write(tmp_path, doc))


def test_a_page_size_above_the_apis_limit_is_refused(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    doc["sync"]["page_size"] = 5000  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"sync\.page_size"):
        load_config(write(tmp_path, doc))


def test_a_daily_budget_above_the_apis_is_refused(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    doc["sync"]["daily_budget"] = 20000  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"sync\.daily_budget"):
        load_config(write(tmp_path, doc))


def test_serial_and_device_id_together_are_refused(tmp_path: Path, certs: dict[str, str]) -> None:
    doc = sample_with(certs)
    doc["devices"][1]["checks"][0]["device_id"] = "abc"  # type: ignore[index]
    with pytest.raises(ConfigError, match="give serial or device_id, not both"):
        load_config(write(tmp_path, doc))
