"""The simulated Rally Bar's certificate near or past expiry, as the https driver sees it."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.https import HttpsOptions, build
from simulator.site import SimulatedSite
from tests.support.simulator import rally_bar, running_site

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Iterator[SimulatedSite]:
    with running_site(tmp_path) as running:
        yield running


def poll(device: dict[str, Any], *, pinned: bool) -> CheckResult:
    pin = {"ca_file": device["cert_file"]} if pinned else {}
    options = HttpsOptions.model_validate({"driver": "https", "url": device["https_url"], **pin})
    return asyncio.run(build(options).poll())


def test_cert_expiring_is_degraded_with_the_days_left(site: SimulatedSite) -> None:
    described = site.fault("rally-bar", "cert-expiring", seconds=2 * 86400)
    assert described["faults"] == ["cert-expiring:172800"]
    result = poll(described, pinned=False)
    assert result.ok, result.detail
    assert result.degraded
    assert "certificate expires in 2.0 days" in result.detail


def test_cert_expired_is_degraded_saying_it_expired(site: SimulatedSite) -> None:
    result = poll(site.fault("rally-bar", "cert-expired"), pinned=False)
    assert result.degraded
    assert "certificate expired 1.0 days ago" in result.detail


def test_a_re_dated_certificate_is_not_the_pinned_one(site: SimulatedSite) -> None:
    result = poll(site.fault("rally-bar", "cert-expiring"), pinned=True)
    assert not result.ok
    assert result.detail == "TLS handshake failed: CERTIFICATE_VERIFY_FAILED (self-signed certificate)"


def test_restore_brings_back_the_year_long_certificate(site: SimulatedSite) -> None:
    site.fault("rally-bar", "cert-expired")
    site.fault("rally-bar", "restore")
    result = poll(rally_bar(site), pinned=True)
    assert result.ok, result.detail
    assert not result.degraded
    assert result.metrics["cert_days_left"] > 300


def test_a_site_started_with_a_short_lived_certificate_is_degraded_even_pinned(tmp_path: Path) -> None:
    short = SimulatedSite(tmp_path, cert_days=3)
    short.start()
    try:
        result = poll(rally_bar(short), pinned=True)
    finally:
        short.stop()
    assert result.ok, result.detail
    assert result.degraded
    assert "certificate expires in 3.0 days" in result.detail
