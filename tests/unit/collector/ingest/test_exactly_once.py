"""Exactly-once ingest: every kind of message is stored once by its identity, gaps in seq are counted."""

import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import Engine, event, func, select

from collector.config import IngestConfig
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.store.schema import agent_boots, agents, devices, events, messages, samples
from tests.support.collector import T0, FakeAgent, boot_id


class Requests:
    """The re-publish seam, recording who was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def __call__(self, site: str, agent: str) -> None:
        self.asked.append((site, agent))


@pytest.fixture
def requests() -> Requests:
    return Requests()


@pytest.fixture
def ingest(engine: Engine, metrics: Metrics, requests: Requests) -> Ingest:
    return Ingest(engine, metrics, "hezo/v1", request_republish=requests)


def count(engine: Engine, table) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def boot_row(engine: Engine):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(select(agent_boots)).one()


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def a_stream(agent: FakeAgent) -> list[tuple[str, bytes]]:
    return [
        agent.birth(),
        agent.state("up"),
        agent.telemetry(),
        agent.event(),
        agent.telemetry(),
        agent.death(),
    ]


def test_every_kind_delivered_twice_is_stored_once(ingest: Ingest, engine: Engine, metrics: Metrics) -> None:
    stream = a_stream(FakeAgent())
    for _ in range(2):
        for topic, payload in stream:
            ingest.handle(topic, payload, T0)
    assert count(engine, messages) == len(stream)
    assert (count(engine, samples), count(engine, events)) == (4, 1)
    assert sample(metrics, "hezo_messages_duplicate_total") == len(stream)


def test_a_batch_holding_the_same_message_twice_stores_it_once(ingest: Ingest, engine: Engine) -> None:
    topic, payload = FakeAgent().telemetry(count=3)
    ingest.handle_batch([(topic, payload, T0, False), (topic, payload, T0, False)])
    assert (count(engine, messages), count(engine, samples)) == (1, 3)


def test_a_batch_is_stored_in_arrival_order(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    batch = [
        (*agent.birth(), T0, False),
        (*agent.state("down"), T0, False),
        (*agent.state("up"), T0, False),
    ]
    ingest.handle_batch(batch)  # type: ignore[arg-type]
    with engine.connect() as conn:
        assert conn.execute(select(agents.c.online)).scalar_one() is True
        assert conn.execute(select(devices.c.state)).scalar_one() == "up"


def test_a_stream_without_holes_has_no_gap(ingest: Ingest, engine: Engine, requests: Requests) -> None:
    for topic, payload in a_stream(FakeAgent()):
        ingest.handle(topic, payload, T0)
    row = boot_row(engine)
    assert (row.max_seq, row.received, row.gaps, row.missing) == (7, 6, 0, 0)  # seq 1 is the birth's will
    assert requests.asked == []


def test_a_hole_in_seq_is_a_gap_and_asks_for_the_state_once(
    ingest: Ingest, engine: Engine, metrics: Metrics, requests: Requests
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    agent.telemetry()  # seq 3 and 4 never arrive
    agent.telemetry()
    ingest.handle(*agent.telemetry(), T0)
    ingest.handle(*agent.telemetry(), T0)
    row = boot_row(engine)
    assert (row.gaps, row.missing) == (1, 2)
    assert requests.asked == [("hq", "room-101-pc")]
    assert sample(metrics, "hezo_seq_gaps_total") == 1
    with engine.connect() as conn:
        assert conn.execute(select(agents.c.seq_gaps, agents.c.seq_missing)).one() == (1, 2)


def test_a_late_message_fills_its_hole(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    late = agent.event()
    ingest.handle(*agent.event(), T0)
    ingest.handle(*late, T0 + timedelta(seconds=1))
    row = boot_row(engine)
    assert (row.gaps, row.missing) == (1, 0)


def test_the_will_named_by_a_birth_is_no_gap(ingest: Ingest, engine: Engine, requests: Requests) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.telemetry(), T0)
    ingest.handle(*agent.birth(), T0)  # a reconnect: its will took a seq and did not fire
    ingest.handle(*agent.telemetry(), T0)
    assert boot_row(engine).gaps == 0
    assert requests.asked == []


def test_retained_copies_do_not_open_gaps(ingest: Ingest, engine: Engine, requests: Requests) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0, retained=True)
    for _ in range(5):
        agent.telemetry()  # published before the collector subscribed
    ingest.handle(*agent.state("up"), T0, retained=True)
    ingest.handle(*agent.telemetry(), T0)
    ingest.handle(*agent.telemetry(), T0)
    assert boot_row(engine).gaps == 0
    assert requests.asked == []


def boot_rows(engine: Engine) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {row.boot: (row.gaps, row.missing) for row in conn.execute(select(agent_boots))}


def test_a_new_start_whose_first_messages_were_lost_is_a_gap(
    ingest: Ingest, engine: Engine, requests: Requests
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    ingest.handle(*agent.telemetry(), T0)
    agent.restart()
    for _ in range(3):
        agent.state("up")  # seq 1 to 3 of the new start are lost in the broker
    ingest.handle(*agent.telemetry(), T0)  # seq 4
    assert boot_rows(engine) == {boot_id(1): (0, 0), boot_id(2): (1, 3)}
    assert requests.asked == [("hq", "room-101-pc")]


def test_a_new_start_that_begins_with_its_birth_is_no_gap(
    ingest: Ingest, engine: Engine, requests: Requests
) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    agent.restart()
    ingest.handle(*agent.birth(), T0)  # seq 2, its will (seq 1) did not fire
    ingest.handle(*agent.telemetry(), T0)
    assert boot_rows(engine) == {boot_id(1): (0, 0), boot_id(2): (0, 0)}
    assert requests.asked == []


def test_an_agent_never_followed_before_is_followed_from_its_first_message(
    ingest: Ingest, engine: Engine, requests: Requests
) -> None:
    # A collector subscribing for the first time meets agents in the middle of their starts: not a loss.
    agent = FakeAgent()
    for _ in range(40):
        agent.telemetry()
    ingest.handle(*agent.telemetry(), T0)
    agent.restart()
    ingest.handle(*agent.telemetry(), T0)  # the next start, in the same batch or not, is followed from seq 1
    assert boot_rows(engine) == {boot_id(1): (0, 0), boot_id(2): (0, 0)}
    agent.restart()
    agent.state("up")
    ingest.handle(*agent.telemetry(), T0)  # seq 2 of boot-3: seq 1 is missing
    assert boot_rows(engine)[boot_id(3)] == (1, 1)
    assert requests.asked == [("hq", "room-101-pc")]


def test_two_starts_of_a_new_agent_in_one_batch(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    first = [agent.telemetry() for _ in range(3)]
    agent.restart()
    agent.state("up")  # seq 1 of boot-2 is lost
    second = [agent.telemetry()]
    ingest.handle_batch([(topic, payload, T0, False) for topic, payload in first[1:] + second])
    assert boot_rows(engine) == {boot_id(1): (0, 0), boot_id(2): (1, 1)}


def test_two_collectors_storing_the_same_messages_at_once_store_each_once(engine: Engine) -> None:
    agent = FakeAgent()
    stream = [(*agent.birth(), T0, False)] + [(*agent.telemetry(), T0, False) for _ in range(200)]
    first = Ingest(engine, Metrics(), "hezo/v1")
    second = Ingest(engine, Metrics(), "hezo/v1")
    errors: list[BaseException] = []

    def run(ingest: Ingest) -> None:
        try:
            for start in range(0, len(stream), 20):
                ingest.handle_batch(stream[start : start + 20])  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(ingest,)) for ingest in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if engine.dialect.name == "sqlite":
        # SQLite serializes writers: a busy database may refuse one (the writer would retry); what was stored
        # is still stored once.
        errors = [e for e in errors if "locked" not in str(e)]
    assert errors == []
    assert count(engine, messages) == len(stream)
    assert count(engine, samples) == 2 * (len(stream) - 1)
    assert boot_row(engine).received == len(stream)


def test_samples_are_stored_with_their_values_and_times(ingest: Ingest, engine: Engine) -> None:
    ingest.handle(*FakeAgent().telemetry(at=T0 + timedelta(seconds=5), count=2), T0)
    with engine.connect() as conn:
        rows = conn.execute(select(samples.c.idx, samples.c.metric, samples.c.value, samples.c.ts)).all()
    assert sorted(tuple(row) for row in rows) == [
        (0, "https.duration_ms", 10.0, T0 + timedelta(seconds=5)),
        (1, "https.duration_ms", 11.0, T0 + timedelta(seconds=5)),
    ]


def test_samples_read_back_exactly_whatever_their_names_and_values(engine: Engine) -> None:
    # PostgreSQL gets the claim as array literals and the samples as COPY text, both written by ingest: names
    # that read as syntax there (NULL, a tab, a backslash, a newline) and floats must come back as sent. A
    # boot id of any form, so that one can read as syntax too.
    ingest = Ingest(engine, Metrics(), "hezo/v1", settings=IngestConfig(boot_ids="any"))
    agent = FakeAgent(site="null", agent="null", boot="NULL")
    metrics_sent = ["a\tb", "back\\slash", "line\nbreak", "cr\rhere", "NULL", "\\N", "plain"]
    values = [0.1, -0.0, -1e15, 5e-324, 123456789.123456789, 2.5, 7]
    body = {
        "samples": [
            {"device": "null", "metric": metric, "value": value, "ts": "2026-11-24T21:00:00.123456Z"}
            for metric, value in zip(metrics_sent, values, strict=True)
        ]
    }
    topic = agent.topics.telemetry(agent.site, agent.agent)
    ingest.handle(topic, agent._payload("telemetry", body, T0), T0)
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                samples.c.site,
                samples.c.agent,
                samples.c.boot,
                samples.c.metric,
                samples.c.value,
                samples.c.ts,
            ).order_by(samples.c.idx)
        ).all()
        claimed = conn.execute(select(messages.c.site, messages.c.agent, messages.c.boot)).one()
    assert tuple(claimed) == ("null", "null", "NULL")
    assert [row.metric for row in rows] == metrics_sent
    assert [row.value for row in rows] == [float(value) for value in values]
    assert {(row.site, row.agent, row.boot) for row in rows} == {("null", "null", "NULL")}
    assert {row.ts for row in rows} == {T0.replace(microsecond=123456)}


def test_messages_stored_out_of_order_leave_nothing_missing(ingest: Ingest, engine: Engine) -> None:
    # Two collectors sharing one subscription can store a boot's messages out of order, in one batch or across
    # batches: every hole a jump opened is filled again, the birth's unfired will included.
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    agent.restart()
    birth = agent.birth()  # seq 2 of boot-2, its will seq 1
    early = [agent.telemetry() for _ in range(2)]  # seq 3 and 4
    later = agent.telemetry()  # seq 5
    ingest.handle(*later, T0)
    ingest.handle_batch([(topic, payload, T0, False) for topic, payload in [birth, *early]])
    assert boot_rows(engine)[boot_id(2)] == (1, 0)
    with engine.connect() as conn:
        assert conn.execute(select(agents.c.seq_missing)).scalar_one() == 0


def test_a_hole_filled_in_the_batch_that_opened_it_is_not_missing(ingest: Ingest, engine: Engine) -> None:
    agent = FakeAgent()
    ingest.handle(*agent.birth(), T0)
    late = [agent.telemetry() for _ in range(2)]
    jump = agent.telemetry()
    ingest.handle_batch([(topic, payload, T0, False) for topic, payload in [jump, *late]])
    assert boot_rows(engine)[boot_id(1)] == (1, 0)


def test_a_retained_copy_claimed_before_its_live_delivery_is_still_stored_once(
    ingest: Ingest, engine: Engine, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    agent = FakeAgent()
    ingest.handle_batch([(*agent.birth(), T0, False), (*agent.telemetry(), T0, False)])
    state = agent.state("up")  # the collector first gets it as a retained copy (a new subscription, say)
    ingest.handle_batch([(*state, T0, True)])
    later = agent.telemetry()
    # Then live, past the boot's highest live seq like the telemetry after it: taken for new, it is not.
    with caplog.at_level(logging.DEBUG, logger="collector.ingest.pipeline"):
        ingest.handle_batch([(*state, T0, False), (*later, T0, False)])
    assert any("stored already" in record.getMessage() for record in caplog.records)  # the batch again
    assert count(engine, messages) == 4
    assert count(engine, samples) == 4
    assert sample(metrics, "hezo_messages_duplicate_total") == 1
    assert sample(metrics, "hezo_store_errors_total") == 0
    assert boot_row(engine).max_seq == agent.seq


def test_a_batch_past_every_boots_highest_seq_is_stored_without_a_savepoint(
    ingest: Ingest, engine: Engine
) -> None:
    agent = FakeAgent()
    ingest.handle_batch([(*agent.birth(), T0, False)])
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        ingest.handle_batch([(*agent.telemetry(), T0, False), (*agent.telemetry(), T0, False)])
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not any("SAVEPOINT" in statement for statement in statements)
    assert count(engine, messages) == 3
