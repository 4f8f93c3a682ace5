"""The https driver reads the certificate's expiry from a real TLS handshake, verified or not."""

import asyncio
import datetime
from pathlib import Path

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.https import HttpsOptions, HttpsProbe, build
from agent.drivers.x509lite import certificate_dates
from tests.support.tlscert import CertFiles, make_cert, tls_server

pytestmark = pytest.mark.integration
DAY = datetime.timedelta(days=1)


def poll_server(files: CertFiles, **options: object) -> CheckResult:
    async def scenario() -> CheckResult:
        async with tls_server(files) as url:
            probe = build(HttpsOptions.model_validate({"driver": "https", "url": url, **options}))
            return await probe.poll()

    return asyncio.run(scenario())


def test_a_certificate_far_from_expiry_is_up_with_its_days_left(tmp_path: Path) -> None:
    result = poll_server(make_cert(tmp_path, valid_from=-DAY, valid_until=200 * DAY))
    assert result.ok, result.detail
    assert not result.degraded, result.detail
    assert result.detail == "HTTP 200"
    assert 199 < result.metrics["cert_days_left"] < 200.1
    assert result.metrics["https.status"] == 200
    assert result.facts["cert_self_signed"] == "yes"


def test_a_certificate_expiring_within_the_warning_is_degraded(tmp_path: Path) -> None:
    result = poll_server(make_cert(tmp_path, valid_from=-DAY, valid_until=3 * DAY))
    assert result.ok
    assert result.degraded
    assert "certificate expires in 3.0 days" in result.detail
    assert "under the 14 days warned of" in result.detail


def test_the_warning_threshold_is_configurable(tmp_path: Path) -> None:
    result = poll_server(make_cert(tmp_path, valid_from=-DAY, valid_until=3 * DAY), cert_warn_days=2)
    assert result.ok, result.detail
    assert not result.degraded, result.detail


def test_an_expired_certificate_unverified_is_degraded_with_the_reason(tmp_path: Path) -> None:
    result = poll_server(make_cert(tmp_path, valid_from=-30 * DAY, valid_until=-2 * DAY))
    assert result.ok
    assert result.degraded
    assert "certificate expired 2.0 days ago" in result.detail
    assert result.metrics["cert_days_left"] < -1.9


def test_an_expired_pinned_certificate_fails_the_handshake_saying_so(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-30 * DAY, valid_until=-2 * DAY)
    result = poll_server(files, ca_file=str(files.cert))
    assert not result.ok
    assert result.detail == "TLS handshake failed: CERTIFICATE_VERIFY_FAILED (certificate has expired)"


def test_a_pinned_certificate_near_expiry_is_still_degraded(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=5 * DAY)
    result = poll_server(files, ca_file=str(files.cert))
    assert result.ok, result.detail
    assert result.degraded, result.detail
    assert "certificate expires in" in result.detail


def test_a_certificate_not_yet_valid_is_degraded(tmp_path: Path) -> None:
    result = poll_server(make_cert(tmp_path, valid_from=2 * DAY, valid_until=300 * DAY))
    assert result.degraded
    assert "certificate not valid before" in result.detail


def test_the_days_left_are_counted_on_the_probes_clock(tmp_path: Path) -> None:
    files = make_cert(tmp_path, valid_from=-DAY, valid_until=200 * DAY)
    not_after = certificate_dates(files.der).not_after

    async def scenario() -> CheckResult:
        async with tls_server(files) as url:
            options = HttpsOptions.model_validate({"driver": "https", "url": url})
            return await HttpsProbe(options, clock=lambda: not_after - 2 * DAY).poll()

    result = asyncio.run(scenario())
    assert result.degraded
    assert result.metrics["cert_days_left"] == 2.0
    assert "certificate expires in 2.0 days" in result.detail
