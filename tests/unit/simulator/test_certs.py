"""The simulated Rally Bar's certificate is self-signed for the loopback address, its key private."""

import datetime
import ipaddress
import stat
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from simulator.certs import write_self_signed


def test_certificate_names_the_rally_bar_and_loopback_and_lasts_a_year(tmp_path: Path) -> None:
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    now = datetime.datetime(2026, 1, 10, tzinfo=datetime.UTC)

    write_self_signed(
        cert_file,
        key_file,
        common_name="Logi Rally Bar",
        ip_addresses=["127.0.0.1"],
        dns_names=["localhost"],
        now=now,
    )

    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Logi Rally Bar"
    assert cert.issuer == cert.subject
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert cert.not_valid_before_utc == now - datetime.timedelta(days=1)
    assert cert.not_valid_after_utc == now + datetime.timedelta(days=365)


def test_private_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_text("old")
    key_file.chmod(0o644)

    write_self_signed(
        tmp_path / "cert.pem", key_file, common_name="x", ip_addresses=["127.0.0.1"], dns_names=["localhost"]
    )

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text().startswith("-----BEGIN PRIVATE KEY-----")
