"""The running service says what is wrong with it: /healthz names a dead writer thread and a lost broker."""

from pathlib import Path

import pytest

from collector.api.app import create_app
from collector.config import CollectorConfig
from collector.service import CollectorService
from tests.support.collector import AppClient
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.integration


def test_service_health_names_a_dead_writer_and_a_lost_broker(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"host": "127.0.0.1", "port": port},
            "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
        }
    )
    service = CollectorService(config)
    service.start()
    try:
        assert service.health() == f"not connected to the broker 127.0.0.1:{port}"
        service.writer.stop()
        assert service.health() == "the writer thread is not running: nothing is stored or acknowledged"
        client = AppClient(create_app(service.engine, health=service.health))
        assert client.get("/healthz").status_code == 503
    finally:
        service.stop()
