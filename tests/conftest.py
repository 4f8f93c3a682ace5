"""Fixtures shared by every test: a private broker on a free port, free ports, the repository root."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mosquitto import Mosquitto, free_port
from tests.support.notices import OPEN_SINKS


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


@pytest.fixture(autouse=True)
def _close_sinks() -> Iterator[None]:
    """Close the sinks a test made (``tests.support.notices.kept``) when it ends."""
    yield
    while OPEN_SINKS:
        OPEN_SINKS.pop().close()
