"""The icmp driver's choices and parsing: which way to ping, and what iputils ``ping`` printed."""

import asyncio
import logging

import pytest

from agent.drivers.icmp import NO_METHOD, IcmpOptions, PingError, build, choose_method, parse_ping_output

# iputils ping 20240117, LC_ALL=C: 3 requests to a peer that answered 2.
PING_SOME = """PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.
64 bytes from 198.18.0.2: icmp_seq=1 ttl=64 time=0.051 ms
64 bytes from 198.18.0.2: icmp_seq=3 ttl=64 time=0.073 ms

--- 198.18.0.2 ping statistics ---
3 packets transmitted, 2 received, 33.3333% packet loss, time 2041ms
rtt min/avg/max/mdev = 0.051/0.062/0.073/0.011 ms
"""
PING_NONE = """PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.

--- 198.18.0.2 ping statistics ---
2 packets transmitted, 0 received, 100% packet loss, time 1031ms

"""
PING_UNREACHABLE = """PING 198.18.0.2 (198.18.0.2) 56(84) bytes of data.
From 198.18.0.1 icmp_seq=1 Destination Host Unreachable

--- 198.18.0.2 ping statistics ---
2 packets transmitted, 0 received, +1 errors, 100% packet loss, time 1020ms
"""


def test_the_ping_summary_gives_counts_and_round_trips() -> None:
    summary = parse_ping_output(PING_SOME)
    assert (summary.sent, summary.received, summary.rtt_avg_ms, summary.rtt_max_ms) == (3, 2, 0.062, 0.073)


@pytest.mark.parametrize("text", [PING_NONE, PING_UNREACHABLE])
def test_no_reply_has_counts_and_no_round_trip(text: str) -> None:
    summary = parse_ping_output(text)
    assert (summary.sent, summary.received, summary.rtt_avg_ms) == (2, 0, None)


def test_a_ping_without_a_summary_says_its_last_line() -> None:
    with pytest.raises(PingError, match=r"^ping: nowhere: Name or service not known$"):
        parse_ping_output("ping: nowhere: Name or service not known\n")


def test_auto_takes_the_first_method_that_works() -> None:
    assert choose_method("auto", ["raw", "ping"]) == ("raw", None)


def test_a_forced_method_that_does_not_work_says_why() -> None:
    method, why = choose_method("unprivileged", ["ping"])
    assert method is None
    assert why == (
        "cannot send ICMP with method unprivileged: unprivileged ICMP sockets are not allowed for this group "
        "(net.ipv4.ping_group_range)"
    )


def test_no_way_to_ping_is_logged_at_start_and_reported_by_every_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    options = IcmpOptions(driver="icmp", host="192.0.2.10")
    with caplog.at_level(logging.ERROR, logger="agent.drivers.icmp"):
        probe = build(options, detect=list)
    assert caplog.messages == [f"icmp check of 192.0.2.10: {NO_METHOD}"]
    result = asyncio.run(probe.poll())
    assert not result.ok
    assert result.detail == NO_METHOD


def test_an_interval_under_the_unprivileged_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match=r"greater than or equal to 0\.2"):
        IcmpOptions(driver="icmp", host="192.0.2.10", interval=0.01)
