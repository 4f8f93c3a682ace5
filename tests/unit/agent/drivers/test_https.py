"""The https driver's TLS contexts: one per distinct setting, and no CA store where nothing is verified."""

import os
import ssl
from datetime import timedelta
from pathlib import Path

from agent.drivers.https import HttpsOptions, build
from tests.support.tlscert import make_cert

YEAR = timedelta(days=365)


def probe_context(**options: object) -> ssl.SSLContext:
    probe = build(HttpsOptions.model_validate({"driver": "https", "url": "https://192.0.2.10/", **options}))
    return probe._context


def test_unverified_checks_share_one_context_that_loads_no_certificate() -> None:
    first, second = probe_context(), probe_context(url="https://192.0.2.11:8443/")
    assert first is second
    assert first.verify_mode == ssl.CERT_NONE
    assert not first.check_hostname
    assert first.cert_store_stats()["x509"] == 0  # the system's store, ~1 MB, is never loaded for nothing


def test_unverified_context_keeps_the_default_protocol_settings() -> None:
    default = ssl.create_default_context()
    context = probe_context()
    assert context.minimum_version == default.minimum_version
    assert context.options == default.options


def test_verified_checks_trust_the_system_store_and_check_host_names() -> None:
    context = probe_context(verify=True)
    assert context is probe_context(verify=True, url="https://192.0.2.12/")
    assert context is not probe_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_a_pinned_certificate_is_the_only_one_trusted(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=YEAR)
    context = probe_context(ca_file=str(files.cert))
    assert context is probe_context(ca_file=str(files.cert), url="https://192.0.2.13/")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert context.cert_store_stats()["x509"] == 1


def test_checks_pinning_different_certificates_do_not_share(tmp_path: Path) -> None:
    one = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=YEAR, name="one")
    two = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=YEAR, name="two")
    assert probe_context(ca_file=str(one.cert)) is not probe_context(ca_file=str(two.cert))


def test_a_pinned_certificate_replaced_on_disk_gets_a_new_context(tmp_path: Path) -> None:
    old = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=YEAR, name="device")
    before = probe_context(ca_file=str(old.cert))
    new = make_cert(tmp_path, valid_from=-timedelta(days=1), valid_until=2 * YEAR, name="device")
    stat = new.cert.stat()
    os.utime(new.cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a coarse clock's same tick
    assert probe_context(ca_file=str(new.cert)) is not before
