"""The sync driver against the simulator's fake Sync Cloud API, over real mutual TLS on loopback."""

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.catalog import model
from agent.config import DeviceConfig, PollConfig
from agent.drivers import SharedResources
from agent.drivers.base import CheckResult
from agent.drivers.sync import SyncAccountConfig, SyncProbe
from agent.drivers.sync.budget import RequestBudget
from agent.drivers.sync.client import SyncClient
from agent.poller import Device, Poller
from simulator.certs import write_self_signed
from simulator.rallybar import RallyBarAdmin
from simulator.syncapi import SyncCloudApi, demo_org
from tests.support.reporting import Recorder

pytestmark = pytest.mark.integration

RALLY = "2210FDZ2AB78"
RALLY_BAR = "2034FH1002R2"
LAST_PAGE_SERIAL = "2203FDA0B1C2"  # the Rally Bar Mini in the fifth place: on the third page of two


def start_api(tmp_path: Path, **options: Any) -> SyncCloudApi:
    api = SyncCloudApi(tmp_path / "sync", demo_org("Room 101", RALLY, RALLY_BAR), **options)
    api.power_on()
    return api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[SyncCloudApi]:
    # A generous throttle: these tests are about answers, not about the rate limit.
    fake = start_api(tmp_path, rate=1000.0, burst=1000)
    try:
        yield fake
    finally:
        fake.power_off()


def account(api: SyncCloudApi, **changes: Any) -> SyncAccountConfig:
    return SyncAccountConfig.model_validate({**api.account(), "page_size": 2, "backoff": 0.1, **changes})


def client(api: SyncCloudApi, **changes: Any) -> SyncClient:
    """A client that fetches anew on every poll: a budget far above the real one, for fast tests."""
    return SyncClient(account(api, **changes), 0.001, budget=RequestBudget(rate=1e6, burst=100, daily=10**12))


def probe(sync: SyncClient, serial: str = RALLY, model_id: str = "rally") -> SyncProbe:
    catalog = model(model_id)
    return SyncProbe(
        sync, serial=serial, device_id=None, sync_names=catalog.sync_names, model_name=catalog.name
    )


def poll(sync: SyncClient, serial: str = RALLY, model_id: str = "rally") -> CheckResult:
    return asyncio.run(probe(sync, serial, model_id).poll())


def test_an_online_rally_is_up_with_its_firmware_and_peripheral_counts(api: SyncCloudApi) -> None:
    result = poll(client(api))
    assert result.ok, result.detail
    assert not result.degraded
    assert result.detail == "Online, no issues"
    assert result.facts == {"firmware": "1.2.69", "sync_status": "Online"}
    assert result.metrics["sync.micPod.expected"] == 2
    assert result.metrics["sync.micPod.actual"] == 2
    assert result.metrics["sync.in_use"] == 0


def test_the_place_list_is_fetched_page_by_page_to_the_end(api: SyncCloudApi) -> None:
    snapshot = client(api).fetch()
    assert snapshot.error is None
    assert snapshot.pages == 3  # five licensed places, two per page
    assert api.statuses() == [200, 200, 200]
    found = snapshot.find(serial=LAST_PAGE_SERIAL)
    assert found is not None
    assert (found.name, found.place) == ("Rally Bar Mini", "Huddle 2")


def test_a_device_sync_reports_offline_is_down_with_the_reason(api: SyncCloudApi) -> None:
    device = api.device(serial=RALLY)
    assert device is not None
    device.fault("offline")
    result = poll(client(api))
    assert not result.ok
    assert result.detail.startswith("Sync reports the Rally in Room 101 Offline (disconnected ")


def test_a_lost_mic_pod_is_degraded_with_the_count(api: SyncCloudApi) -> None:
    device = api.device(serial=RALLY)
    assert device is not None
    device.fault("mic-pod-lost")
    result = poll(client(api))
    assert result.ok
    assert result.degraded
    assert result.detail == "Sync health Warning; 1 of 2 mic pods"
    assert result.metrics["sync.micPod.actual"] == 1


def test_a_health_warning_is_degraded(api: SyncCloudApi) -> None:
    device = api.device(serial=RALLY)
    assert device is not None
    device.fault("health-warning")
    result = poll(client(api))
    assert result.ok
    assert result.degraded
    assert result.detail == "Sync health Warning"


def test_a_device_sync_does_not_list_is_down_saying_so(api: SyncCloudApi) -> None:
    result = poll(client(api), serial="NOSUCHSERIAL")
    assert not result.ok
    assert result.detail.startswith(
        f"Sync lists no device with serial NOSUCHSERIAL in organisation {api.org_id}"
    )


def test_a_sync_product_other_than_the_configured_model_is_refused(api: SyncCloudApi) -> None:
    result = poll(client(api), serial=RALLY, model_id="rally-bar")
    assert not result.ok
    assert result.detail == (
        "Sync reports a 'Rally' here, but the device is configured as Rally Bar (Sync name 'Rally Bar')"
    )


def test_throttling_is_retried_with_backoff_until_it_succeeds(tmp_path: Path) -> None:
    fake = start_api(tmp_path, rate=2.0, burst=1)  # the client below asks far faster than that
    try:
        sync = client(fake, max_retries=6)
        snapshot = sync.fetch()
        statuses = fake.statuses()
    finally:
        fake.power_off()
    assert snapshot.error is None
    assert snapshot.pages == 3
    assert 429 in statuses
    assert statuses.count(200) == 3


def test_retry_after_is_honoured(tmp_path: Path) -> None:
    fake = start_api(tmp_path, rate=2.0, burst=1, retry_after=1)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        asyncio.run(asyncio.sleep(seconds))

    try:
        sync = SyncClient(
            account(fake, max_retries=4), 0.001, budget=RequestBudget(rate=1e6, daily=10**12), sleep=sleep
        )
        snapshot = sync.fetch()
    finally:
        fake.power_off()
    assert snapshot.error is None
    assert 1.0 in waits
    assert 0.1 not in waits  # the exponential backoff's first step was not used


def test_throttling_that_does_not_end_is_a_reason(tmp_path: Path) -> None:
    fake = start_api(tmp_path, rate=0.001, burst=1)
    try:
        result = poll(client(fake, max_retries=1), serial=LAST_PAGE_SERIAL, model_id="rally-bar-mini")
    finally:
        fake.power_off()
    assert not result.ok
    assert result.detail == "Sync Cloud API: throttled (HTTP 429) after 2 attempt(s)"


def test_an_unstable_api_is_retried_past_its_5xx(api: SyncCloudApi) -> None:
    api.unstable_seconds = 0.2
    result = poll(client(api, max_retries=2))
    assert result.ok, result.detail
    assert api.statuses().count(503) == 3  # one per page


def test_a_client_without_a_certificate_is_refused_in_the_handshake(api: SyncCloudApi) -> None:
    sync = SyncClient(account(api).model_copy(update={"cert_file": None, "key_file": None}), 30.0)
    result = poll(sync)
    assert not result.ok
    assert result.detail.startswith("Sync Cloud API: TLS: the API refused the connection")
    assert result.detail.endswith("no client certificate is configured")
    assert api.statuses() == [0]  # refused before any HTTP


def test_a_certificate_from_another_ca_is_refused(api: SyncCloudApi, tmp_path: Path) -> None:
    cert, key = tmp_path / "other-cert.pem", tmp_path / "other-key.pem"
    write_self_signed(cert, key, common_name="not from Sync Portal", ip_addresses=[], dns_names=["x"])
    result = poll(SyncClient(account(api, cert_file=str(cert), key_file=str(key)), 30.0))
    assert not result.ok
    assert result.detail.startswith("Sync Cloud API: TLS: the API refused the ")
    assert "not one generated in Sync Portal for this organisation" in result.detail


def test_an_unreachable_api_is_a_reason(api: SyncCloudApi) -> None:
    sync = client(api)
    api.power_off()
    result = poll(sync)
    assert not result.ok
    assert result.detail == f"Sync Cloud API: cannot connect to {api.base_url}: connection refused"


def test_every_device_of_a_round_shares_one_fetch_of_the_place_list(api: SyncCloudApi) -> None:
    shared = SharedResources()
    sections = {"sync": account(api)}
    configs = [
        DeviceConfig.model_validate(
            {"id": "rally", "model": "rally", "serial": RALLY, "checks": [{"driver": "sync"}]}
        ),
        DeviceConfig.model_validate(
            {"id": "bar", "model": "rally-bar", "serial": RALLY_BAR, "checks": [{"driver": "sync"}]}
        ),
        DeviceConfig.model_validate(
            {
                "id": "mini",
                "model": "rally-bar-mini",
                "serial": LAST_PAGE_SERIAL,
                "checks": [{"driver": "sync"}],
            }
        ),
    ]
    devices = [
        Device.from_config(config, shared, sections=sections, poll_interval=60.0) for config in configs
    ]
    run = Poller(devices, PollConfig(interval=60, recheck_count=0), Recorder())

    async def two_rounds() -> None:
        await asyncio.gather(*(run.poll_device(device) for device in devices))
        await asyncio.gather(*(run.poll_device(device) for device in devices))  # within the interval

    asyncio.run(two_rounds())
    assert [device.state.state for device in devices] == ["up", "up", "up"]
    assert api.statuses() == [200, 200, 200]  # three pages, once, for three devices and two rounds


def test_an_unreachable_api_does_not_stop_the_other_devices(api: SyncCloudApi, tmp_path: Path) -> None:
    admin = RallyBarAdmin(tmp_path / "admin")
    admin.power_on()
    api.power_off()
    sync_device = Device("rally", [probe(client(api))])
    https_config = DeviceConfig.model_validate(
        {"id": "bar", "model": "rally-bar", "checks": [{"driver": "https", "url": admin.url, "timeout": 5}]}
    )
    https_device = Device.from_config(https_config)
    recorder = Recorder()
    stop = asyncio.Event()

    async def run_until_both_judged() -> None:
        task = asyncio.create_task(
            Poller([sync_device, https_device], PollConfig(interval=0.2), recorder).run(stop)
        )
        for _ in range(200):
            if sync_device.state.reason != "not checked yet" and https_device.state.state != "unknown":
                break
            await asyncio.sleep(0.05)
        stop.set()
        await task

    try:
        asyncio.run(run_until_both_judged())
    finally:
        admin.power_off()
    assert https_device.state.state == "up"
    # The cloud being away says nothing about the device: unknown (no ticket), with the reason.
    assert sync_device.state.state == "unknown"
    assert "cannot tell: Sync Cloud API: cannot connect to" in sync_device.state.reason


def test_a_new_firmware_reported_by_sync_is_a_firmware_changed_event(api: SyncCloudApi) -> None:
    device = Device("rally", [probe(client(api))])
    recorder = Recorder()
    run = Poller([device], PollConfig(interval=30, recheck_count=0), recorder)
    asyncio.run(run.poll_device(device))
    fake = api.device(serial=RALLY)
    assert fake is not None
    fake.fault("firmware-changed")
    asyncio.run(run.poll_device(device))
    changes = [e for e in recorder.events if e["type"] == "firmware-changed"]
    assert len(changes) == 1
    assert changes[0]["reason"] == f"{RALLY} firmware 1.2.69 -> 1.3.12"
    assert device.state.state == "up"


def test_an_api_that_answers_too_slowly_is_a_reason(api: SyncCloudApi) -> None:
    api.unstable_seconds = 3.0  # the first request answers 503, its retry only after 3 s
    result = poll(client(api, timeout=0.5, max_retries=2))
    assert not result.ok
    assert result.detail == "Sync Cloud API: no answer within 0.5 s"
