"""The shared Sync client, without a network: one fetch per interval for all devices, backoff, budget."""

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest

from agent.drivers.sync import SyncAccountConfig, SyncProbe, missing_peripherals
from agent.drivers.sync.budget import DAY_S, RequestBudget
from agent.drivers.sync.client import SyncClient, SyncDevice
from simulator.pki import CertificateAuthority


class FakeResponse:
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.body = body
        self.headers = headers or {}
        self.reason = "reason"

    def json(self) -> Any:
        return self.body


class Clock:
    def __init__(self) -> None:
        self.now = 19_000 * DAY_S

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def page(serials: list[str], continuation: str | None = None) -> dict[str, Any]:
    devices = [
        {
            "id": f"id-{s}",
            "type": "Logitech",
            "name": "Rally",
            "version": "1.0",
            "serial": s,
            "status": "Online",
        }
        for s in serials
    ]
    body: dict[str, Any] = {"places": [{"id": "p", "name": "Room", "devices": devices}]}
    if continuation:
        body["continuation"] = continuation
    return body


class ScriptedSession:
    """An HTTP session that answers from a script instead of the network, and remembers what it was asked."""

    def __init__(self, answers: list[FakeResponse], clock: Clock) -> None:
        self.answers = answers
        self.clock = clock
        self.asked: list[dict[str, Any]] = []
        self.sent_at: list[float] = []

    def get(self, url: str, *, params: dict[str, str | int], **_options: Any) -> FakeResponse:
        self.asked.append(dict(params))
        self.sent_at.append(self.clock.now)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def close(self) -> None:
        return None


class ScriptedClient(SyncClient):
    """A client whose session answers from a script, on a fake clock that its waits move."""

    def __init__(
        self, account: SyncAccountConfig, answers: list[FakeResponse], clock: Clock, **kw: Any
    ) -> None:
        budget = kw.pop("budget", None) or RequestBudget(monotonic=clock, wall=clock)
        self.session = ScriptedSession(answers, clock)
        super().__init__(
            account,
            kw.pop("poll_interval", 60.0),
            budget=budget,
            sleep=self._sleep_on,
            monotonic=clock,
            session=self.session,
        )
        self.clock = clock
        self.slept: list[float] = []

    @property
    def asked(self) -> list[dict[str, Any]]:
        return self.session.asked

    @property
    def sent_at(self) -> list[float]:
        return self.session.sent_at

    def _sleep_on(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.sleep(seconds)


@pytest.fixture
def account(tmp_path: Path) -> SyncAccountConfig:
    ca = CertificateAuthority(tmp_path / "ca.pem", "test CA")
    ca.issue(tmp_path / "c.pem", tmp_path / "k.pem", common_name="client", server=False)
    return SyncAccountConfig(
        org_id="org1", cert_file=tmp_path / "c.pem", key_file=tmp_path / "k.pem", page_size=2, backoff=1.0
    )


def test_continuation_is_followed_to_the_last_page(account: SyncAccountConfig) -> None:
    answers = [
        FakeResponse(200, page(["A", "B"], "t1")),
        FakeResponse(200, page(["C", "D"], "t2")),
        FakeResponse(200, page(["E"])),
    ]
    client = ScriptedClient(account, answers, Clock())
    snapshot = client.fetch()
    assert snapshot.error is None
    assert [d.serial for d in snapshot.devices] == ["A", "B", "C", "D", "E"]
    assert [a.get("continuation") for a in client.asked] == [None, "t1", "t2"]
    assert all(a["limit"] == 2 for a in client.asked)
    assert client.asked[0]["projection"] == "place.info,place.device,place.device.info,place.device.status"


def test_pages_of_one_fetch_go_at_most_one_a_second(account: SyncAccountConfig) -> None:
    answers = [FakeResponse(200, page([str(n)], f"t{n}")) for n in range(5)] + [
        FakeResponse(200, page(["end"]))
    ]
    client = ScriptedClient(account, answers, Clock())
    client.fetch()
    gaps = [b - a for a, b in itertools.pairwise(client.sent_at)]
    assert len(gaps) == 5
    assert min(gaps) >= 1.0


def test_a_429_is_retried_with_exponential_backoff(account: SyncAccountConfig) -> None:
    throttled = FakeResponse(429, {"statusCode": 429, "message": "Too Many Requests"})
    client = ScriptedClient(
        account, [throttled, throttled, throttled, FakeResponse(200, page(["A"]))], Clock()
    )
    snapshot = client.fetch()
    assert snapshot.error is None
    assert [s for s in client.slept if s not in (0.0,)][:3] == [1.0, 2.0, 4.0]


def test_retry_after_replaces_the_backoff(account: SyncAccountConfig) -> None:
    throttled = FakeResponse(429, {"statusCode": 429, "message": "Too Many Requests"}, {"Retry-After": "7"})
    client = ScriptedClient(account, [throttled, FakeResponse(200, page(["A"]))], Clock())
    assert client.fetch().error is None
    assert 7.0 in client.slept


def test_a_5xx_that_persists_is_a_reason(account: SyncAccountConfig) -> None:
    client = ScriptedClient(account, [FakeResponse(503, {})], Clock())
    snapshot = client.fetch()
    assert snapshot.error == "HTTP 503 after 5 attempt(s)"


def test_a_403_says_what_it_means(account: SyncAccountConfig) -> None:
    client = ScriptedClient(
        account, [FakeResponse(403, {"statusCode": 403, "message": "Forbidden"})], Clock()
    )
    assert (client.fetch().error or "").startswith("HTTP 403 Forbidden: the client certificate is expired")


def test_the_daily_cap_stops_fetching_without_a_request(account: SyncAccountConfig) -> None:
    clock = Clock()
    budget = RequestBudget(daily=3, monotonic=clock, wall=clock)
    client = ScriptedClient(account, [FakeResponse(200, page(["A"]))], clock, budget=budget)
    for _ in range(3):
        assert client.fetch().error is None
    snapshot = client.fetch()
    assert len(client.asked) == 3
    assert (snapshot.error or "").startswith("the daily budget of 3 requests is used up")


def test_devices_polled_in_one_round_share_one_fetch(account: SyncAccountConfig) -> None:
    clock = Clock()
    client = ScriptedClient(account, [FakeResponse(200, page(["A", "B", "C"]))], clock)
    probes = [SyncProbe(client, serial=s, device_id=None) for s in ("A", "B", "C")]

    async def rounds() -> list[bool]:
        first = await asyncio.gather(*(p.poll() for p in probes))
        clock.now += 30  # half the interval: the last fetch still serves
        second = await asyncio.gather(*(p.poll() for p in probes))
        clock.now += 30  # a full interval later: fetched again
        third = await asyncio.gather(*(p.poll() for p in probes))
        return [r.ok for r in (*first, *second, *third)]

    assert all(asyncio.run(rounds()))
    assert len(client.asked) == 2


def test_a_raised_interval_is_logged_once(
    account: SyncAccountConfig, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    client = ScriptedClient(account, [FakeResponse(200, page(["A"]))], clock, poll_interval=2.0)
    with caplog.at_level(logging.WARNING, logger="agent.drivers.sync.client"):
        for _ in range(4):
            client.fetch()
            clock.now += 6
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Sync org org1: fetching the place list every 6 s instead of every 2 s: 1 page(s) per fetch "
        "must stay within 14400 requests/day and 1 request(s)/s"
    ]
    assert client.fetch_interval() == 6.0


def test_a_missing_peripheral_is_worded_with_its_count() -> None:
    device = SyncDevice(
        "id",
        "Logitech",
        "Rally",
        "1",
        "S",
        "Online",
        "NoIssues",
        None,
        None,
        {"micPod": (2, 1), "camera": (1, 0), "speaker": (2, 2), "displayHub": (1, 1)},
    )
    assert missing_peripherals(device) == ["0 of 1 camera", "1 of 2 mic pods"]


def test_an_unexpected_client_error_is_a_failed_check_not_an_exception(account: SyncAccountConfig) -> None:
    class BrokenSession(ScriptedSession):
        def get(self, url: str, **_options: Any) -> FakeResponse:
            raise KeyError("surprise")

    client = SyncClient(account, 60.0, session=BrokenSession([], Clock()))
    result = asyncio.run(SyncProbe(client, serial="A", device_id=None).poll())
    assert not result.ok
    assert result.detail == "Sync Cloud API: client error: KeyError('surprise')"


def test_a_device_sync_does_not_list_is_inconclusive_not_down(account: SyncAccountConfig) -> None:
    client = SyncClient(
        account, 60.0, session=ScriptedSession([FakeResponse(200, page(["A", "B"]))], Clock())
    )
    result = asyncio.run(SyncProbe(client, serial="Z", device_id=None).poll())
    assert result.inconclusive
    assert result.detail.startswith("Sync lists no device with serial Z in organisation")
