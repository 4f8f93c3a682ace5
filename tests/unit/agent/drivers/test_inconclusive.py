"""Each driver says "could not tell" (inconclusive, with its reason) when this PC failed to look, and ``down``
only when the device itself did not answer: a false down sends an engineer and a replacement."""

import asyncio
import errno
from pathlib import Path

import pytest

from agent.catalog import MODELS
from agent.drivers import host, https, icmp, usb


def test_icmp_without_a_way_to_ping_cannot_tell() -> None:
    probe = icmp.build(icmp.IcmpOptions(driver="icmp", host="192.0.2.10"), detect=list)
    result = asyncio.run(probe.poll())
    assert result.inconclusive
    assert result.detail.startswith("cannot send ICMP")


def test_icmp_a_ping_that_could_not_be_made_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = icmp.IcmpProbe(icmp.IcmpOptions(driver="icmp", host="room-7.invalid"), "ping")

    async def unresolvable() -> icmp.PingSummary:
        raise icmp.PingError("ping: room-7.invalid: Name or service not known")

    monkeypatch.setattr(probe, "_ping", unresolvable)
    result = asyncio.run(probe.poll())
    assert result.inconclusive
    assert result.detail == "ping: room-7.invalid: Name or service not known"


def test_icmp_echo_requests_unanswered_are_down(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = icmp.IcmpProbe(icmp.IcmpOptions(driver="icmp", host="192.0.2.10"), "ping")

    async def silence() -> icmp.PingSummary:
        return icmp.PingSummary(5, 0, None, None)

    monkeypatch.setattr(probe, "_ping", silence)
    result = asyncio.run(probe.poll())
    assert (result.ok, result.inconclusive) == (False, False)


@pytest.mark.parametrize(
    ("error", "inconclusive"),
    [
        (OSError(errno.ENETUNREACH, "Network is unreachable"), True),
        (OSError(errno.EMFILE, "Too many open files"), True),
        (OSError(errno.EHOSTUNREACH, "No route to host"), False),  # the device's address does not answer ARP
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), False),
    ],
)
def test_https_an_error_of_this_pc_cannot_tell_one_of_the_device_is_down(
    monkeypatch: pytest.MonkeyPatch, error: OSError, inconclusive: bool
) -> None:
    probe = https.build(https.HttpsOptions(driver="https", url="https://192.0.2.10/"))

    async def failing() -> tuple[int, bytes | None]:
        raise error

    monkeypatch.setattr(probe, "_exchange", failing)
    result = asyncio.run(probe.poll())
    assert not result.ok
    assert result.inconclusive is inconclusive, result.detail


def test_https_a_name_that_does_not_resolve_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    probe = https.build(https.HttpsOptions(driver="https", url="https://rally-bar.example/"))

    async def unresolvable() -> tuple[int, bytes | None]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(probe, "_exchange", unresolvable)
    result = asyncio.run(probe.poll())
    assert result.inconclusive
    assert result.detail == "cannot resolve rally-bar.example: Temporary failure in name resolution"


def test_usb_an_unreadable_sysfs_cannot_tell(tmp_path: Path) -> None:
    options = usb.UsbOptions(driver="usb", sysfs_root=tmp_path / "missing", hotplug="off")
    model = MODELS["meetup"]
    probe = usb.build(options, model.usb, model.name)
    result = asyncio.run(probe.poll())
    assert result.inconclusive
    assert result.detail.startswith(f"cannot read {tmp_path / 'missing'}")


def test_host_an_unreadable_host_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> host.Reading:
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(host, "read_host", broken)
    result = asyncio.run(host.build(host.HostOptions(driver="host")).poll())
    assert result.inconclusive
    assert result.detail.startswith("cannot read the host")
