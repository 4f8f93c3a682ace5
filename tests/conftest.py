"""Fixtures shared by every test: a private broker on a free port, the production broker config on one, and a
socket standing in for systemd's notify socket."""

import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, free_port
from tests.support.notices import OPEN_SINKS
from tests.support.securebroker import BrokerClient, SecureBroker, start_secure_broker


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own, on a free loopback port, with config/mosquitto.conf."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Mosquitto("127.0.0.1", free_port(), workdir)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[SecureBroker]:
    """A Mosquitto of this test's own with config/mosquitto.production.conf: TLS, logins, per-agent topics."""
    broker = start_secure_broker(tmp_path / "broker")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker_clients() -> Iterator[list[BrokerClient]]:
    """Clients of the secure broker a test opens; closed after it."""
    opened: list[BrokerClient] = []
    yield opened
    for client in opened:
        client.close()


@pytest.fixture(autouse=True)
def _close_sinks() -> Iterator[None]:
    """Close the sinks a test made (``tests.support.notices.kept``) when it ends."""
    yield
    while OPEN_SINKS:
        OPEN_SINKS.pop().close()


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket standing in for systemd's, in the abstract namespace (no path length limit)."""
    name = f"hezo-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(30)
    yield sock, "@" + name
    sock.close()
