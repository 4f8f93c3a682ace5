"""The icmp driver against real peers: loopback, and a network namespace the test makes, breaks and loses.

Every way to ping is exercised for real: raw sockets (this suite runs as root in CI), unprivileged ICMP
sockets (allowed inside the test's namespace by its own ``ping_group_range``) and the system ``ping``.
"""

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.icmp import IcmpOptions, available_methods, build
from tests.support.netns import REPO, Netns, require_netns

pytestmark = pytest.mark.integration


def poll(host: str, **options: object) -> CheckResult:
    probe = build(IcmpOptions.model_validate({"driver": "icmp", "host": host, **options}))
    return asyncio.run(probe.poll())


def raw_or_skip() -> None:
    if "raw" not in available_methods():
        pytest.skip("raw ICMP sockets need root or CAP_NET_RAW")


def ping_or_skip() -> None:
    if "ping" not in available_methods():
        pytest.skip("no 'ping' command (iputils-ping)")


@pytest.fixture
def peer() -> Iterator[Netns]:
    require_netns()
    with Netns() as namespace:
        yield namespace


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_loopback_answers_every_request(method: str) -> None:
    raw_or_skip() if method == "raw" else ping_or_skip()
    result = poll("127.0.0.1", count=3, method=method)
    assert result.ok, result.detail
    assert not result.degraded
    assert result.detail.startswith("3/3 replies, rtt avg ")
    assert result.metrics["loss_pct"] == 0
    assert 0 < result.metrics["rtt_ms"] <= result.metrics["rtt_max_ms"]


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_ipv6_loopback_answers(method: str) -> None:
    if not has_ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    raw_or_skip() if method == "raw" else ping_or_skip()
    result = poll("::1", count=2, method=method)
    assert result.ok, result.detail


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_a_peer_that_answers_is_up(peer: Netns, method: str) -> None:
    raw_or_skip() if method == "raw" else ping_or_skip()
    result = poll(peer.peer_address, count=3, method=method)
    assert result.ok, result.detail
    assert result.metrics["loss_pct"] == 0


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_a_peer_whose_link_is_down_is_down_with_no_reply(peer: Netns, method: str) -> None:
    raw_or_skip() if method == "raw" else ping_or_skip()
    peer.down()
    result = poll(peer.peer_address, count=2, timeout=0.5, method=method)
    assert not result.ok
    assert result.detail == "no reply to 2 echo requests"
    assert result.metrics == {"loss_pct": 100.0}


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_a_peer_that_loses_half_the_requests_is_degraded(peer: Netns, method: str) -> None:
    raw_or_skip() if method == "raw" else ping_or_skip()
    peer.lossy(answer_every=2)
    result = poll(peer.peer_address, count=6, timeout=0.5, method=method)
    assert result.ok, result.detail
    assert result.degraded
    assert result.metrics["loss_pct"] == 50.0
    assert result.detail.startswith("3/6 replies")
    assert result.detail.endswith("(50% loss, over 20%)")


def test_loss_under_the_threshold_is_up(peer: Netns) -> None:
    raw_or_skip()
    peer.lossy(answer_every=2)
    result = poll(peer.peer_address, count=4, timeout=0.5, method="raw", loss_pct=60)
    assert result.ok, result.detail
    assert not result.degraded


def test_a_slow_average_round_trip_over_the_limit_is_degraded() -> None:
    raw_or_skip()
    result = poll("127.0.0.1", count=2, method="raw", rtt_ms=0.000001)
    assert result.degraded
    assert result.detail.endswith("(average round trip over 1e-06 ms)")


def test_unprivileged_icmp_sockets_where_the_group_may_use_them(peer: Netns) -> None:
    peer.allow_unprivileged_ping()
    code = (
        "import asyncio, json; from agent.drivers.icmp import IcmpOptions, build, available_methods;"
        "probe = build(IcmpOptions(driver='icmp', host='127.0.0.1', count=2, method='unprivileged'));"
        "r = asyncio.run(probe.poll());"
        "print(json.dumps([available_methods(), probe.method, r.ok, r.detail]))"
    )
    done = subprocess.run(
        ["ip", "netns", "exec", peer.name, sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    methods, method, ok, detail = json.loads(done.stdout)
    assert methods[0] == "unprivileged"
    assert method == "unprivileged"
    assert ok, detail


@pytest.mark.parametrize("method", ["raw", "ping"])
def test_a_name_that_does_not_resolve_is_reported_as_data(method: str) -> None:
    raw_or_skip() if method == "raw" else ping_or_skip()
    result = poll("no-such-host.invalid", count=1, method=method)
    assert not result.ok
    assert "no-such-host.invalid" in result.detail


def test_a_method_that_cannot_work_is_said_at_start_up_and_the_agent_still_starts(
    peer: Netns, tmp_path: Path
) -> None:
    peer.allow_unprivileged_ping(False)
    config = tmp_path / "agent.yaml"
    config.write_text(
        "site: s\nagent: a\ndevices:\n"
        "  - {id: tap, model: tap-ip, checks: [{driver: icmp, host: 192.0.2.10, method: unprivileged}]}\n"
    )
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            peer.name,
            sys.executable,
            "-m",
            "agent",
            "--check-config",
            "-c",
            str(config),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (
        "icmp check of 192.0.2.10: cannot send ICMP with method unprivileged: unprivileged ICMP sockets are "
        "not allowed for this group (net.ipv4.ping_group_range)"
    ) in done.stderr
