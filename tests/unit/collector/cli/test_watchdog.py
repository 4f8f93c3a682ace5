"""The collector under systemd: ready once serving, the watchdog fed only while the writer works."""

import secrets
import socket
from collections.abc import Iterator

import pytest

from collector.cli.watchdog import Watchdog


@pytest.fixture
def systemd() -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A datagram socket standing in for systemd's notify socket, and the environment that names it."""
    name = f"hezo-test-{secrets.token_hex(6)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(20)
    yield sock, {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "20000"}
    sock.close()


def test_ready_then_pings_while_working_then_stopping(systemd: tuple[socket.socket, dict[str, str]]) -> None:
    sock, environ = systemd
    watchdog = Watchdog(lambda: True, lambda: None, status="serving on 127.0.0.1:8080", environ=environ)
    watchdog.start()
    received = [sock.recv(4096).decode() for _ in range(3)]
    watchdog.stop()
    assert received == ["READY=1\nSTATUS=serving on 127.0.0.1:8080", "WATCHDOG=1", "WATCHDOG=1"]
    while (message := sock.recv(4096).decode()) == "WATCHDOG=1":
        pass
    assert message == "STOPPING=1"


def test_no_ping_while_the_writer_is_stuck_and_pings_again_once_it_works(
    systemd: tuple[socket.socket, dict[str, str]], caplog: pytest.LogCaptureFixture
) -> None:
    sock, environ = systemd
    problems = iter(["the writer has finished nothing for 31 s while 5 messages wait"] * 3)
    watchdog = Watchdog(lambda: True, lambda: next(problems, None), environ=environ)
    with caplog.at_level("INFO", logger="collector.cli.watchdog"):
        watchdog.start()
        assert sock.recv(4096).decode().startswith("READY=1")
        assert sock.recv(4096).decode() == "WATCHDOG=1"  # only after the three stuck looks
        watchdog.stop()
    stuck = [record for record in caplog.records if "not feeding" in record.message]
    assert len(stuck) == 1, "a stuck writer is logged once, not at every look"
    assert "5 messages wait" in stuck[0].message


def test_nothing_is_ready_before_the_web_server_starts(systemd: tuple[socket.socket, dict[str, str]]) -> None:
    sock, environ = systemd
    watchdog = Watchdog(lambda: False, lambda: None, environ=environ)
    watchdog.start()
    watchdog.stop()
    assert sock.recv(4096).decode() == "STOPPING=1"
