"""The https driver against a real TLS server: the simulated Rally Bar admin page, self-signed."""

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.drivers.base import CheckResult
from agent.drivers.https import HttpsOptions, build
from simulator.rallybar import RallyBarAdmin

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[RallyBarAdmin]:
    page = RallyBarAdmin(tmp_path)
    page.power_on()
    try:
        yield page
    finally:
        page.power_off()


def poll(**options: object) -> CheckResult:
    return asyncio.run(build(HttpsOptions.model_validate({"driver": "https", **options})).poll())


def test_the_admin_page_answering_over_tls_is_alive(admin: RallyBarAdmin) -> None:
    result = poll(url=admin.url)
    assert result.ok
    assert result.detail == "HTTP 200"
    assert result.metrics["https.duration_ms"] > 0


def test_a_pinned_certificate_is_verified_with_its_host_name(admin: RallyBarAdmin) -> None:
    result = poll(url=admin.url, ca_file=str(admin.cert_file))
    assert result.ok, result.detail


def test_a_self_signed_certificate_fails_verification_against_the_system_cas(admin: RallyBarAdmin) -> None:
    result = poll(url=admin.url, verify=True)
    assert not result.ok
    assert result.detail.startswith("TLS handshake failed: CERTIFICATE_VERIFY_FAILED")


def test_a_powered_off_device_is_connection_refused(admin: RallyBarAdmin) -> None:
    admin.power_off()
    result = poll(url=admin.url)
    assert not result.ok
    assert result.detail == "connection refused"


def test_a_device_that_hangs_is_reported_after_the_timeout(admin: RallyBarAdmin) -> None:
    admin.slow_seconds = 30
    result = poll(url=admin.url, timeout=0.3)
    assert not result.ok
    assert result.detail == "no answer within 0.3 s"
    # The check gives up at its timeout; it does not wait for the hung peer to say goodbye (30 s here).
    assert result.duration_ms is not None
    assert result.duration_ms < 10_000


def test_an_unexpected_status_is_a_failed_check(admin: RallyBarAdmin) -> None:
    result = poll(url=admin.url, expect_status=[401, 302])
    assert not result.ok
    assert result.detail == "HTTP 200, expected one of [401, 302]"


def test_a_tls_server_that_does_not_speak_http_is_reported(admin: RallyBarAdmin) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(admin.cert_file, admin.key_file)

    async def scenario() -> CheckResult:
        async def garbage(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"SSH-2.0-not-a-web-server\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(garbage, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        async with server:
            options = HttpsOptions(driver="https", url=f"https://127.0.0.1:{port}/")
            return await build(options).poll()

    result = asyncio.run(scenario())
    assert not result.ok
    assert result.detail == "not an HTTP answer: bad status line b'SSH-2.0-not-a-web-server\\r\\n'"


def serve_raw(admin: RallyBarAdmin, answer: bytes) -> CheckResult:
    """Poll a TLS server that sends ``answer`` whatever it is asked, then closes."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(admin.cert_file, admin.key_file)

    async def scenario() -> CheckResult:
        async def reply(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            for start in range(0, len(answer), 7):  # in small pieces: a line may span TLS records
                writer.write(answer[start : start + 7])
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(reply, "127.0.0.1", 0, ssl=context)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await build(HttpsOptions(driver="https", url=f"https://127.0.0.1:{port}/")).poll()

    return asyncio.run(scenario())


def test_a_status_line_split_across_records_is_read_whole(admin: RallyBarAdmin) -> None:
    result = serve_raw(admin, b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
    assert result.ok
    assert result.detail.startswith("HTTP 401")


def test_a_status_line_cut_short_by_the_peer_closing_is_still_read(admin: RallyBarAdmin) -> None:
    result = serve_raw(admin, b"HTTP/1.0 302")
    assert result.ok
    assert result.detail.startswith("HTTP 302")


def test_an_endless_status_line_is_refused_at_the_header_limit(admin: RallyBarAdmin) -> None:
    result = serve_raw(admin, b"HTTP/1.1 200 " + b"x" * 20000)
    assert not result.ok
    assert result.detail == "not an HTTP answer: status line too long"


def test_a_name_that_does_not_resolve_cannot_tell() -> None:
    result = poll(url="https://no-such-host.invalid/", timeout=5)
    assert result.inconclusive  # the resolver failed, the device was never asked
    assert result.detail.startswith("cannot resolve no-such-host.invalid:")
