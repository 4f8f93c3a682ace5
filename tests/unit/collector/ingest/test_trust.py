"""No message can wedge, freeze or forge: poison is refused within its batch, ordering keys that cannot be
true are refused, only enrolled agents are taken when asked, and rejected messages stay within bounds."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from collector.config import IngestConfig
from collector.ingest import enrolment
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import devices, rejected
from protocol import Envelope, encode, format_ts
from tests.support.collector import T0, FakeAgent, boot_id


def make(engine: Engine, metrics: Metrics, **settings: Any) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1", settings=IngestConfig(**settings))


def rejections(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(row.reason, row.error) for row in conn.execute(select(rejected).order_by(rejected.c.id))]


def state_of(engine: Engine, device: str = "rally-bar-1") -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(devices.c.state).where(devices.c.device == device)).scalar_one())


def down(since: str = "2026-11-24T21:00:00Z") -> dict[str, Any]:
    return {"device": "rally-bar-1", "state": "down", "since": since, "reason": "x", "checks": []}


def raw(agent: FakeAgent, **fields: Any) -> tuple[str, bytes]:
    """A state message of ``agent`` with its envelope fields replaced as an attacker would."""
    doc = {
        "v": 1,
        "site": agent.site,
        "agent": agent.agent,
        "boot": agent.boot,
        "seq": 99,
        "ts": "2026-11-24T21:00:00Z",
        "kind": "state",
        "body": {
            "device": "rally-bar-1",
            "state": "down",
            "since": "2026-11-24T21:00:00Z",
            "reason": "x",
            "checks": [],
        },
    }
    doc.update(fields)
    return agent.topics.state(agent.site, agent.agent, "rally-bar-1"), json.dumps(doc).encode()


@pytest.mark.parametrize("kind", [[], {}], ids=["list", "object"])
def test_a_kind_that_is_no_string_is_refused_and_the_batch_behind_it_stored(
    engine: Engine, metrics: Metrics, kind: object
) -> None:
    agent = FakeAgent()
    ingest = make(engine, metrics)
    poison = raw(agent, kind=kind)
    ingest.handle_batch([(*poison, T0, False), (*agent.birth(), T0, False), (*agent.state("up"), T0, False)])
    [(reason, error)] = rejections(engine)
    assert reason == "malformed"
    assert "field 'kind' must be one of" in error
    assert state_of(engine) == "up"


def test_times_from_far_ahead_or_long_before_are_refused_not_stored(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent()
    ingest = make(engine, metrics)
    ingest.handle(*agent.birth(), T0)
    ahead = raw(
        agent,
        ts="9999-12-31T23:59:59Z",
        body={
            "device": "rally-bar-1",
            "state": "down",
            "since": "0001-01-01T00:00:00Z",
            "reason": "x",
            "checks": [],
        },
    )
    before = raw(
        agent,
        seq=100,
        body={
            "device": "rally-bar-1",
            "state": "down",
            "since": "0001-01-01T00:00:00Z",
            "reason": "x",
            "checks": [],
        },
    )
    after_ts = raw(
        agent,
        seq=101,
        body={
            "device": "rally-bar-1",
            "state": "down",
            "since": "2026-11-24T22:00:00Z",
            "reason": "x",
            "checks": [],
        },
    )
    ingest.handle_batch([(*ahead, T0, False), (*before, T0, False), (*after_ts, T0, False)])
    ingest.handle(*agent.state("up"), T0)
    assert [reason for reason, _ in rejections(engine)] == ["implausible"] * 3
    errors = [error for _, error in rejections(engine)]
    assert "ahead of the collector's clock" in errors[0]
    assert "before any agent existed" in errors[1]
    assert "after the message's ts" in errors[2]
    assert state_of(engine) == "up"


@pytest.mark.parametrize(
    ("boot", "why"),
    [("zzzzzzzzzzzzzzzz", "not an agent's start time"), ("ffffffffffff0000", "after now")],
    ids=["not-a-start-time", "from-the-future"],
)
def test_a_boot_that_cannot_be_an_agents_start_is_refused_and_the_real_agent_goes_on(
    engine: Engine, metrics: Metrics, boot: str, why: str
) -> None:
    agent = FakeAgent()
    ingest = make(engine, metrics)
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("up"), T0)
    forged = FakeAgent(boot=boot, devices=[])
    ingest.handle(*forged.birth(), T0)  # a birth listing no devices would retire them all
    agent.restart()
    ingest.handle(*agent.birth(), T0 + timedelta(minutes=1))
    ingest.handle(*agent.state("down"), T0 + timedelta(minutes=1))
    [(_reason, error)] = [item for item in rejections(engine) if item[0] == "implausible"][:1]
    assert why in error
    assert state_of(engine) == "down"


def test_a_seq_far_past_its_boot_cannot_freeze_a_device(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent()
    ingest = make(engine, metrics)
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("up"), T0)
    ingest.handle(*raw(agent, seq=2**62), T0)
    ingest.handle(*agent.state("down"), T0 + timedelta(seconds=5))
    [(reason, error)] = rejections(engine)
    assert reason == "implausible"
    assert "past the boot's highest" in error
    assert state_of(engine) == "down"  # the real state after the forged one was applied


def test_only_enrolled_agents_are_taken_when_asked_and_a_revoked_one_is_not(
    engine: Engine, metrics: Metrics
) -> None:
    agent = FakeAgent()
    ingest = make(engine, metrics, enrolled_only=True)
    ingest.handle(*agent.birth(), T0)
    assert [reason for reason, _ in rejections(engine)] == ["not-enrolled"]
    with engine.begin() as conn:
        enrolment.enrol(conn, "hq", "room-101-pc", by="admin", at=T0)
    agent.restart()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("up"), T0)
    assert state_of(engine) == "up"
    with engine.begin() as conn:
        enrolment.revoke(conn, "hq", "room-101-pc", by="admin", at=T0)
    ingest.handle(*agent.state("down"), T0 + timedelta(seconds=1))
    assert state_of(engine) == "up"
    assert [reason for reason, _ in rejections(engine)] == ["not-enrolled", "not-enrolled"]
    assert metrics.registry.get_sample_value("hezo_messages_rejected_total", {"reason": "not-enrolled"}) == 2


def test_rejected_messages_are_kept_within_their_age_and_count(engine: Engine, metrics: Metrics) -> None:
    ingest = make(engine, metrics, rejected_keep_days=1, rejected_max_rows=100)
    for index in range(150):
        ingest.handle("hezo/v1/hq/room-101-pc/status", b"not json", T0 + timedelta(minutes=index))
    ingest.handle("hezo/v1/hq/room-101-pc/status", b"old", T0 - timedelta(days=2))
    assert ingest.prune_rejected(now=T0 + timedelta(minutes=150)) == 51
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count(), func.min(rejected.c.received_at)).select_from(rejected)
        ).one()
    assert left[0] == 100
    assert left[1] == T0 + timedelta(minutes=50)


def test_a_retained_copy_delivered_again_is_kept_once(engine: Engine, metrics: Metrics) -> None:
    ingest = make(engine, metrics)
    for _ in range(3):
        ingest.handle("hezo/v1/hq/room-101-pc/status", b"not json", T0, retained=True)
    assert len(rejections(engine)) == 1


def test_a_message_of_the_agents_own_boot_format_passes(engine: Engine, metrics: Metrics) -> None:
    agent = FakeAgent(boot=boot_id(7))
    envelope = Envelope(
        agent.site,
        agent.agent,
        agent.boot,
        1,
        format_ts(T0),
        "death",
        {"state": "offline", "reason": "shutdown"},
    )
    make(engine, metrics).handle(agent.topics.status(agent.site, agent.agent), encode(envelope), T0)
    assert rejections(engine) == []
