"""The simulated Rally Bar's admin page answers over TLS, and powers off and on like a real one."""

import socket
import ssl
from pathlib import Path

import pytest

from simulator.rallybar import RallyBarAdmin
from tests.support.simulator import rally_bar, running_site, tls_get

pytestmark = pytest.mark.integration


def connection_ends(tls: ssl.SSLSocket) -> bool:
    """True when the peer closes or resets the connection; False when it stays open (socket timeout)."""
    try:
        while tls.recv(65536):
            pass  # the rest of an answer already on its way
    except TimeoutError:
        return False
    except (ssl.SSLError, ConnectionError):
        return True
    return True


def test_admin_page_answers_200_over_tls_with_a_self_signed_certificate_for_127_0_0_1(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        device = rally_bar(site)
        port = int(device["https_url"].rsplit(":", 1)[1].rstrip("/"))

        status, body, peer = tls_get("127.0.0.1", port, device["cert_file"])

    assert status == 200
    assert "<title>Logi Rally Bar</title>" in body
    assert "simulat" in body.lower()
    assert ("IP Address", "127.0.0.1") in peer["subjectAltName"]
    assert peer["subject"] == peer["issuer"] == ((("commonName", "Logi Rally Bar"),),)


def test_power_off_refuses_connections(tmp_path: Path) -> None:
    admin = RallyBarAdmin(tmp_path)
    admin.power_on()
    admin.power_off()

    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", admin.port), timeout=30).close()


def test_power_on_answers_again_on_the_same_port(tmp_path: Path) -> None:
    admin = RallyBarAdmin(tmp_path)
    admin.power_on()
    port = admin.port
    try:
        admin.power_off()
        admin.power_on()

        status, _, _ = tls_get("127.0.0.1", admin.port, str(admin.cert_file))
    finally:
        admin.power_off()

    assert admin.port == port
    assert status == 200


def test_power_off_drops_an_open_connection(tmp_path: Path) -> None:
    admin = RallyBarAdmin(tmp_path)
    admin.power_on()
    context = ssl.create_default_context(cafile=admin.cert_file)
    try:
        with (
            socket.create_connection(("127.0.0.1", admin.port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # keep-alive: stays open
            assert tls.recv(12).startswith(b"HTTP/1.")
            admin.power_off()

            ended = connection_ends(tls)
    finally:
        admin.power_off()

    assert ended


def test_slow_fault_still_answers(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        site.fault("rally-bar", "slow", seconds=0.2)
        device = rally_bar(site)
        port = int(device["https_url"].rsplit(":", 1)[1].rstrip("/"))

        status, _, _ = tls_get("127.0.0.1", port, device["cert_file"])

    assert status == 200
    assert device["faults"] == ["slow:0.2"]
