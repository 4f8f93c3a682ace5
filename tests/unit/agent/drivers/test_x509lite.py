"""The agent's small certificate reader agrees with the cryptography library on validity and self-signing."""

import datetime
from pathlib import Path

import pytest

from agent.drivers.x509lite import CertificateError, certificate_dates
from tests.support.tlscert import make_cert

DAY = datetime.timedelta(days=1)


def test_validity_dates_are_read_to_the_second(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=10 * DAY)
    dates = certificate_dates(files.der)
    now = datetime.datetime.now(datetime.UTC)
    assert abs((dates.not_after - now) - 10 * DAY) < datetime.timedelta(minutes=5)
    assert abs((dates.not_before - now) + DAY) < datetime.timedelta(minutes=5)


def test_a_date_past_2049_is_read_from_its_generalized_time(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=40 * 365 * DAY)
    assert certificate_dates(files.der).not_after.year >= 2066


def test_a_certificate_issued_by_itself_is_self_signed(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=DAY)
    assert certificate_dates(files.der).self_signed


def test_a_certificate_from_another_issuer_is_not_self_signed(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=DAY, issuer="Some CA")
    assert not certificate_dates(files.der).self_signed


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01", b"\x04\x00", b"\x30\x84\xff\xff\xff\xff"])
def test_bytes_that_are_not_a_certificate_raise_a_certificate_error(der: bytes) -> None:
    with pytest.raises(CertificateError):
        certificate_dates(der)
