"""A gap in an agent's messages asks it for its states again, by signed command, once a minute at most."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.remote.keys import keygen
from collector.service import CollectorService
from collector.store.database import migrate
from tests.support.collector import T0, FakeAgent


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CollectorService]:
    keygen(tmp_path / "collector.key")
    config = CollectorConfig.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
            "diagnostics": {"key_file": str(tmp_path / "collector.key")},
        }
    )
    running = CollectorService(config)  # not started: no broker is needed to ingest by hand
    migrate(running.engine)
    yield running
    running.engine.dispose()


def test_a_gap_sends_one_republish_state_command_per_minute(
    service: CollectorService, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(
        service.commander, "request_republish", lambda site, agent: asked.append((site, agent))
    )
    agent = FakeAgent()
    service.ingest.handle(*agent.birth(), T0)
    agent.seq += 3  # three messages lost
    service.ingest.handle(*agent.telemetry(), T0)
    agent.seq += 1  # and another, a moment later
    service.ingest.handle(*agent.telemetry(), T0)
    assert asked == [(agent.site, agent.agent)]
