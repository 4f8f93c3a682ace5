"""The agent's own metrics: what a scrape shows, what the poller counts, and the endpoint staying off."""

import asyncio
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.config import MetricsConfig
from agent.metrics import (
    AgentCollector,
    Endpoint,
    PollFigures,
    Snapshot,
    oldest_age,
    on_loopback,
    snapshot_on,
)
from agent.poller import Device, Poller
from tests.support.promtool import check_metrics
from tests.support.reporting import Recorder
from tests.unit.agent.test_poller import ScriptedProbe, no_sleep

LABELS = {"site": "hq", "agent": "room-101-pc"}


def figures(polls: PollFigures | None = None, connections: int = 3) -> Snapshot:
    return Snapshot(
        spool_messages=12,
        spool_bytes=3456,
        spool_evicted=2,
        oldest_unacknowledged_seconds=7.5,
        connections=connections,
        connected=True,
        polls=polls or PollFigures(),
    )


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An asyncio loop running in a thread of its own, as the agent's runs beside the HTTP thread."""
    running = asyncio.new_event_loop()
    thread = threading.Thread(target=running.run_forever, daemon=True)
    thread.start()
    yield running
    running.call_soon_threadsafe(running.stop)
    thread.join()
    running.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return str(answer.read().decode())


def values(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset({**LABELS, **labels}.items())


def test_a_scrape_shows_the_spool_the_lag_and_reconnects(loop: asyncio.AbstractEventLoop) -> None:
    polls = PollFigures()
    polls.observe("https", 0.25, True)
    polls.observe("https", 0.75, False)
    endpoint = Endpoint("127.0.0.1", 0, AgentCollector(snapshot_on(loop, lambda: figures(polls)), **LABELS))
    try:
        found = values(scrape(endpoint.port))
    finally:
        endpoint.close()
    assert found[key("hezo_agent_spool_messages")] == 12
    assert found[key("hezo_agent_spool_bytes")] == 3456
    assert found[key("hezo_agent_publish_lag_seconds")] == 7.5
    assert found[key("hezo_agent_broker_reconnects_total")] == 2
    assert found[key("hezo_agent_spool_evicted_total")] == 2
    assert found[key("hezo_agent_poll_duration_seconds_count", driver="https")] == 2
    assert found[key("hezo_agent_poll_duration_seconds_sum", driver="https")] == 1.0
    assert found[key("hezo_agent_poll_last_duration_seconds", driver="https")] == 0.75
    assert found[key("hezo_agent_poll_failures_total", driver="https")] == 1


def test_promtool_finds_nothing_wrong_in_the_agents_metrics(loop: asyncio.AbstractEventLoop) -> None:
    polls = PollFigures()
    polls.observe("usb", 0.01, True)
    endpoint = Endpoint("127.0.0.1", 0, AgentCollector(snapshot_on(loop, lambda: figures(polls)), **LABELS))
    try:
        text = scrape(endpoint.port)
    finally:
        endpoint.close()
    result = check_metrics(text)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_poller_counts_every_check_and_recheck_by_driver() -> None:
    polls = PollFigures()
    probe = ScriptedProbe("bar", [False, False, True])
    device = Device("bar", [probe])
    from agent.config import PollConfig

    config = PollConfig(interval=30, recheck_count=2, recheck_delay=1)
    asyncio.run(
        Poller([device], config, Recorder(), sleep=no_sleep, observe=polls.observe).poll_device(device)
    )
    assert polls.count == {"scripted": 3}
    assert polls.failed == {"scripted": 2}


def test_the_lag_is_the_age_of_the_oldest_unacknowledged_message() -> None:
    now = datetime(2026, 11, 24, 21, 0, 30, tzinfo=UTC)
    assert oldest_age(b'{"ts": "2026-11-24T21:00:00.000Z"}', now) == 30.0
    assert oldest_age(None, now) == 0.0


@pytest.mark.parametrize("listen", ["9311", "127.0.0.1:", "127.0.0.1:70000", ":9311"])
def test_a_listen_address_without_host_and_port_is_refused(listen: str) -> None:
    with pytest.raises(ValueError, match="expected HOST:PORT"):
        MetricsConfig(listen=listen)


def test_an_ipv6_listen_address_is_split_into_host_and_port() -> None:
    config = MetricsConfig(listen="[::1]:9311")
    assert (config.host, config.port) == ("::1", 9311)


def test_the_agent_does_not_import_prometheus_client_unless_the_endpoint_is_on() -> None:
    code = (
        "import sys, agent.main, agent.metrics, agent.poller, agent.link\n"
        "print('prometheus_client' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.0.2.10", False),
        ("pc.example", False),
    ],
)
def test_only_loopback_counts_as_local(host: str, local: bool) -> None:
    assert on_loopback(host) is local
