"""Ingest: what agents publish becomes agents, devices and events; bad input is kept, not fatal."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Row, func, select

from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.database import utcnow
from collector.store.schema import agents, devices, events, rejected, samples
from tests.support.collector import RALLY_BAR, T0, FakeAgent, boot_id

TOPIC = "hezo/v1/hq/room-101-pc/status"


@pytest.fixture
def ingest(engine: Engine, metrics: Metrics) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1")


def rejected_rows(engine: Engine) -> list[tuple[str, str, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(select(rejected.c.reason, rejected.c.error, rejected.c.payload)).all()
    return [(row.reason, row.error, bytes(row.payload)) for row in rows]


def agent_online(engine: Engine) -> bool | None:
    with engine.connect() as conn:
        return conn.execute(select(agents.c.online)).scalar_one_or_none()


def device_row(engine: Engine, device: str = "rally-bar-1") -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(select(devices).where(devices.c.device == device)).one()


def agent_boot(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(agents.c.boot)).scalar_one_or_none()


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.mark.parametrize(
    ("payload", "reason", "error"),
    [
        (
            b"{not json",
            "malformed",
            "payload is not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (
            json.dumps({"v": 2, "site": "hq"}).encode(),
            "unsupported-version",
            "unsupported schema version 2: this side speaks v1",
        ),
        (
            json.dumps(
                {
                    "v": 1,
                    "site": "hq",
                    "agent": "room-101-pc",
                    "boot": boot_id(1),
                    "seq": -1,
                    "ts": "2026-11-24T21:00:00Z",
                    "kind": "death",
                    "body": {},
                }
            ).encode(),
            "malformed",
            "field 'seq' must be an integer from 0 to 2^63-1, got -1",
        ),
        (
            json.dumps(
                {
                    "v": 1,
                    "site": "other-site",
                    "agent": "room-101-pc",
                    "boot": boot_id(1),
                    "seq": 1,
                    "ts": "2026-11-24T21:00:00Z",
                    "kind": "death",
                    "body": {"state": "offline", "reason": "shutdown"},
                }
            ).encode(),
            "topic",
            "envelope is from other-site/room-101-pc but arrived on the topic of hq/room-101-pc",
        ),
    ],
    ids=["bad-json", "version-2", "wrong-field", "topic-mismatch"],
)
def test_bad_message_is_kept_with_its_error_and_ingestion_goes_on(
    ingest: Ingest, engine: Engine, metrics: Metrics, payload: bytes, reason: str, error: str
) -> None:
    ingest.handle(TOPIC, payload, T0)
    ingest.handle(*FakeAgent().birth(), T0)

    assert rejected_rows(engine) == [(reason, error, payload)]
    assert sample(metrics, "hezo_messages_rejected_total", reason=reason) == 1
    assert agent_online(engine) is True
    assert sample(metrics, "hezo_messages_ingested_total", kind="birth") == 1


def test_bad_body_field_is_rejected_with_its_path(ingest: Ingest, engine: Engine) -> None:
    topic, payload = FakeAgent().state("down")
    doc = json.loads(payload)
    doc["body"]["checks"][0]["ok"] = "yes"
    ingest.handle(topic, json.dumps(doc).encode(), T0)
    assert rejected_rows(engine)[0][1] == "body.checks[0].ok: expected a boolean, got 'yes'"


def test_telemetry_with_a_value_past_the_bound_is_rejected_whole_and_the_next_message_is_stored(
    ingest: Ingest, engine: Engine, metrics: Metrics
) -> None:
    # Two samples of 1.7e308 in one hour once stopped retention on PostgreSQL (docs/retention.md).
    agent = FakeAgent()
    topic, payload = agent.telemetry(count=3)
    doc = json.loads(payload)
    doc["body"]["samples"][1]["value"] = 1.7e308
    ingest.handle(topic, json.dumps(doc).encode(), T0)
    ingest.handle(*agent.telemetry(count=2), T0)

    [(reason, error, _payload)] = rejected_rows(engine)
    assert (reason, error) == (
        "malformed",
        "body.samples[1].value: expected a number from -1e15 to 1e15, got 1.7e+308",
    )
    assert sample(metrics, "hezo_messages_rejected_total", reason="malformed") == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(samples)).scalar_one() == 2


def test_message_on_a_foreign_topic_is_rejected_as_topic(ingest: Ingest, engine: Engine) -> None:
    ingest.handle("other/prefix/hq/a/status", b"{}", T0)
    assert rejected_rows(engine) == [
        ("topic", "topic 'other/prefix/hq/a/status' is not under prefix 'hezo/v1'", b"{}")
    ]


def test_birth_brings_agent_online_with_its_inventory(ingest: Ingest, engine: Engine) -> None:
    ingest.handle(*FakeAgent().birth(), T0)
    device = device_row(engine)
    assert agent_online(engine) is True
    assert (device.model, device.serial, device.room, device.contract) == (
        "rally-bar",
        "2034FH1002R2",
        "Room 101",
        "HZ-2026-0042",
    )


def test_death_takes_agent_offline_at_receive_time(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    died = T0 + timedelta(minutes=5)
    ingest.handle(*agent.death(at=T0), died)
    with engine.connect() as conn:
        row = conn.execute(select(agents)).one()
    assert row.online is False
    assert row.status_changed_at == died


def test_duplicate_event_is_stored_once(ingest: Ingest, engine: Engine, metrics: Metrics) -> None:
    topic, payload = FakeAgent().event()
    ingest.handle(topic, payload, T0)
    ingest.handle(topic, payload, T0 + timedelta(seconds=1))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 1
    assert sample(metrics, "hezo_messages_duplicate_total") == 1


def test_down_state_records_down_since(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    went_down = T0 + timedelta(seconds=10)
    published = went_down + timedelta(seconds=3)  # the agent re-checked before it said "down"
    received = published + timedelta(seconds=2)
    ingest.handle(*agent.state("down", at=published, since=went_down), received)
    device = device_row(engine)
    assert device.state == "down"
    assert device.down_since == received - timedelta(seconds=3)
    assert device.checks[0]["detail"] == "connection refused"


def test_older_state_does_not_overwrite_newer(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    old = agent.state("down", at=T0)
    new = agent.state("up", at=T0 + timedelta(seconds=30))
    ingest.handle(*new, T0 + timedelta(seconds=31))
    ingest.handle(*old, T0 + timedelta(seconds=32))
    device = device_row(engine)
    assert device.state == "up"
    assert device.down_since is None


def test_retained_state_delivered_again_keeps_first_down_since(ingest: Ingest, engine: Engine) -> None:
    topic, payload = FakeAgent().state("down", at=T0)
    ingest.handle(topic, payload, T0)
    ingest.handle(topic, payload, T0 + timedelta(minutes=10))
    assert device_row(engine).down_since == T0


def test_telemetry_and_reply_are_counted(ingest: Ingest, metrics: Metrics) -> None:
    agent = FakeAgent()
    ingest.handle(
        agent.topics.telemetry("hq", "room-101-pc"),
        json.dumps(
            {
                "v": 1,
                "site": "hq",
                "agent": "room-101-pc",
                "boot": boot_id(1),
                "seq": 1,
                "ts": "2026-11-24T21:00:00Z",
                "kind": "telemetry",
                "body": {"samples": []},
            }
        ).encode(),
        T0,
    )
    assert sample(metrics, "hezo_messages_ingested_total", kind="telemetry") == 1


def test_state_order_is_boot_and_seq_not_the_agents_clock(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", at=T0 + timedelta(hours=1)), T0)
    # The agent's clock was set back (NTP correction): the next state has an earlier ts but is newer.
    ingest.handle(*agent.state("up", at=T0), T0 + timedelta(seconds=5))
    assert device_row(engine).state == "up"


def test_a_late_will_of_an_earlier_connection_keeps_the_agent_online(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    first_will = agent.will()
    ingest.handle(*agent.birth(), T0 + timedelta(seconds=10))  # reconnected, with a new will
    ingest.handle(*first_will, T0 + timedelta(seconds=11))  # the broker's copy of the old will, late
    assert agent_online(engine) is True


def test_the_will_of_the_current_connection_takes_the_agent_offline(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.will(), T0 + timedelta(seconds=10))  # its seq is lower than the birth's
    assert agent_online(engine) is False


def test_a_will_of_the_previous_boot_keeps_the_restarted_agent_online(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    old_will = agent.will()
    agent.restart()
    ingest.handle(*agent.birth(), T0 + timedelta(seconds=10))
    ingest.handle(*old_will, T0 + timedelta(seconds=11))
    assert agent_online(engine) is True
    assert agent_boot(engine) == boot_id(2)


def test_a_late_birth_of_the_previous_boot_changes_nothing(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    old_birth = agent.birth()
    agent.restart()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.death(reason="shutdown"), T0 + timedelta(seconds=5))
    ingest.handle(*old_birth, T0 + timedelta(seconds=6))
    assert agent_online(engine) is False
    assert agent_boot(engine) == boot_id(2)


def test_a_state_of_the_previous_boot_is_ignored(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    old_down = agent.state("down")
    agent.restart()
    ingest.handle(*agent.birth(), T0 + timedelta(seconds=5))
    ingest.handle(*agent.state("up"), T0 + timedelta(seconds=6))
    ingest.handle(*old_down, T0 + timedelta(seconds=7))
    assert device_row(engine).state == "up"


def test_a_restarted_agent_puts_its_devices_back_to_unknown(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent(devices=[dict(RALLY_BAR), {**RALLY_BAR, "id": "meetup-1"}])
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down"), T0)
    ingest.handle(*agent.state("down", device="meetup-1"), T0)
    ingest.handle(*agent.will(), T0 + timedelta(seconds=5))
    agent.restart()
    birth = agent.birth()
    # Retained messages of the new start arrive in any order across topics: meetup-1's state came first.
    ingest.handle(*agent.state("up", device="meetup-1"), T0 + timedelta(seconds=60))
    ingest.handle(*birth, T0 + timedelta(seconds=61))

    rally_bar = device_row(engine)
    assert (rally_bar.state, rally_bar.down_since) == ("unknown", None)
    assert rally_bar.state_reason == "waiting for the first check of the agent's new start"
    assert device_row(engine, "meetup-1").state == "up"


def test_down_since_does_not_trust_the_agents_clock(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    # The agent's clock is an hour behind; it saw the device go down 10 s before it published.
    agent_now = T0 - timedelta(hours=1)
    message = agent.state("down", at=agent_now, since=agent_now - timedelta(seconds=10))
    ingest.handle(*message, T0)
    assert device_row(engine).down_since == T0 - timedelta(seconds=10)


def test_a_device_missing_from_a_birth_is_retired_and_comes_back_when_listed(
    ingest: Ingest, engine: Engine
) -> None:
    agent = FakeAgent(devices=[dict(RALLY_BAR), {**RALLY_BAR, "id": "meetup-1"}])
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", device="meetup-1"), T0)
    agent.devices = [dict(RALLY_BAR)]
    ingest.handle(*agent.birth(), T0 + timedelta(seconds=10))
    retired = device_row(engine, "meetup-1")
    assert retired.retired_at == T0 + timedelta(seconds=10)
    assert retired.state == "down"  # left as it was
    assert device_row(engine).retired_at is None

    agent.devices = [dict(RALLY_BAR), {**RALLY_BAR, "id": "meetup-1"}]
    ingest.handle(*agent.birth(), T0 + timedelta(seconds=20))
    assert device_row(engine, "meetup-1").retired_at is None


def test_a_message_that_cannot_be_stored_is_kept_as_store_error(
    ingest: Ingest, engine: Engine, metrics: Metrics
) -> None:
    ingest.keep_unstorable(TOPIC, b"{}", "OperationalError: database is locked", T0)
    assert rejected_rows(engine) == [("store-error", "OperationalError: database is locked", b"{}")]
    assert sample(metrics, "hezo_messages_rejected_total", reason="store-error") == 1


def test_a_state_for_a_device_the_current_birth_did_not_list_is_kept_retired(
    ingest: Ingest, engine: Engine
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.state("down", device="stray-cam"), T0)
    stray = device_row(engine, "stray-cam")
    assert (stray.state, stray.retired_at) == ("down", T0)


def test_a_new_device_reported_by_a_restarted_agent_before_its_new_birth_is_not_retired(
    ingest: Ingest, engine: Engine
) -> None:
    # The agent restarts with a device added to its config; retained messages arrive in any order across
    # topics, so the new start's state of the new device may come before the new start's birth.
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    agent.restart()
    agent.devices = [dict(RALLY_BAR), {**RALLY_BAR, "id": "new-cam"}]
    birth = agent.birth()
    ingest.handle(*agent.state("up", device="new-cam"), T0 + timedelta(seconds=5))
    assert device_row(engine, "new-cam").retired_at is None
    ingest.handle(*birth, T0 + timedelta(seconds=6))
    row = device_row(engine, "new-cam")
    assert (row.state, row.retired_at) == ("up", None)


def test_a_retained_bad_message_delivered_again_is_kept_once(
    ingest: Ingest, engine: Engine, metrics: Metrics
) -> None:
    # A broker sends retained messages again at every new subscription.
    ingest.handle(TOPIC, b"{not json", T0, retained=True)
    ingest.handle(TOPIC, b"{not json", T0 + timedelta(seconds=60), retained=True)
    assert [row[0] for row in rejected_rows(engine)] == ["malformed"]
    assert sample(metrics, "hezo_messages_rejected_total", reason="malformed") == 1


def test_the_same_bad_payload_published_twice_is_kept_twice(ingest: Ingest, engine: Engine) -> None:
    ingest.handle(TOPIC, b"{not json", T0, retained=True)
    ingest.handle(TOPIC, b"{not json", T0)  # a new publish, not a retained copy
    ingest.handle("hezo/v1/hq/other-pc/status", b"{not json", T0, retained=True)  # another topic
    assert len(rejected_rows(engine)) == 3


def test_a_batch_that_fails_after_claiming_its_messages_leaves_no_claim_behind(
    ingest: Ingest, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The identities are claimed (in a savepoint) before the samples go in: if the process died or the store
    # failed in between, a claim left behind would make the redelivered message a "duplicate", never stored.
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    telemetry = agent.telemetry()

    def broken(*_args: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("collector.ingest.pipeline.insert_samples", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        ingest.handle(*telemetry, T0)
    monkeypatch.undo()
    ingest.handle(*telemetry, T0)  # the broker delivers it again
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(samples)).scalar_one() == 2


def test_how_far_behind_ingest_is_follows_live_messages_not_retained_copies(
    ingest: Ingest, metrics: Metrics
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(at=T0), T0)
    before = (utcnow() - (T0 + timedelta(seconds=30))).total_seconds()
    ingest.handle(*agent.telemetry(at=T0 + timedelta(seconds=30)), T0 + timedelta(seconds=31))
    after = (utcnow() - (T0 + timedelta(seconds=30))).total_seconds()
    behind = metrics.registry.get_sample_value("hezo_ingest_behind_seconds")
    assert behind is not None
    assert before <= behind <= after
    ingest.handle(*agent.state("up", at=T0 + timedelta(seconds=1)), T0 + timedelta(seconds=32), retained=True)
    assert metrics.registry.get_sample_value("hezo_ingest_behind_seconds") == behind
