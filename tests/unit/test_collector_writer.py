"""The single writer: a message is acknowledged only once stored, failures are retried, then kept."""

import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from collector.ingest import Ingest
from collector.metrics import Metrics
from collector.mqtt import Job, Message, Writer
from collector.store import rejected
from tests.support.collector import T0, FakeAgent, migrated_engine


class Store:
    """A handler that fails its first ``failures`` calls, like a database that is down for a while."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.stored: list[str] = []
        self.kept: list[tuple[str, str]] = []

    def handle(self, topic: str, _payload: bytes, _received_at: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        self.stored.append(topic)

    def keep(self, topic: str, _payload: bytes, error: str, _received_at: datetime) -> None:
        self.kept.append((topic, error))


def sample(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def test_a_message_is_acknowledged_after_it_is_stored() -> None:
    events: list[str] = []
    store = Store()

    def handle(topic: str, payload: bytes, received_at: datetime) -> None:
        events.append("stored")
        store.handle(topic, payload, received_at)

    writer = Writer(handle, store.keep, wait=lambda _: False)
    writer.process(Message("t", b"{}", T0, ack=lambda: events.append("acked")))
    assert events == ["stored", "acked"]


def test_a_failing_store_is_retried_with_doubling_delays_before_the_ack() -> None:
    store, waits, acks, metrics = Store(failures=3), [], [], Metrics()
    writer = Writer(store.handle, store.keep, metrics=metrics, wait=lambda s: bool(waits.append(s)))
    writer.process(Message("t", b"{}", T0, ack=lambda: acks.append(1)))
    assert waits == [1, 2, 4]
    assert (store.stored, store.kept, acks) == (["t"], [], [1])
    assert sample(metrics, "hezo_store_errors_total") == 3


def test_after_five_failures_the_message_is_kept_as_store_error_and_acknowledged(tmp_path: Path) -> None:
    engine = migrated_engine(tmp_path)
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    waits: list[float] = []
    acks: list[int] = []

    def broken(_topic: str, _payload: bytes, _received_at: datetime) -> None:
        raise OperationalError("INSERT ...", {}, Exception("disk I/O error"))

    metrics = Metrics()
    writer = Writer(broken, ingest.keep_unstorable, metrics=metrics, wait=lambda s: bool(waits.append(s)))
    topic, payload = FakeAgent().birth()
    writer.process(Message(topic, payload, T0, ack=lambda: acks.append(1)))

    assert waits == [1, 2, 4, 8]
    assert acks == [1]
    assert sample(metrics, "hezo_store_errors_total") == 5
    with engine.connect() as conn:
        row = conn.execute(select(rejected)).one()
    assert (row.topic, row.reason, bytes(row.payload)) == (topic, "store-error", payload)
    assert row.error.startswith("OperationalError: ")
    assert "disk I/O error" in row.error


def test_a_message_not_stored_when_stopping_stays_unacknowledged() -> None:
    store, acks = Store(failures=1), []
    writer = Writer(store.handle, store.keep, wait=lambda _: True)  # True: the writer is stopping
    writer.process(Message("t", b"{}", T0, ack=lambda: acks.append(1)))
    assert (store.stored, store.kept, acks) == ([], [], [])


def test_messages_and_jobs_run_one_at_a_time_on_one_thread_in_queue_order() -> None:
    order: list[tuple[str, int]] = []
    done = threading.Event()

    def handle(topic: str, _payload: bytes, _received_at: datetime) -> None:
        order.append((topic, threading.get_ident()))

    writer = Writer(handle, Store().keep)
    writer.put(Message("first", b"", T0))
    writer.put(Job(lambda: order.append(("evaluate", threading.get_ident())), "evaluation"))
    writer.put(Message("second", b"", T0))
    writer.put(Job(done.set, "done"))
    writer.start()
    try:
        assert done.wait(10)
    finally:
        writer.stop()
    assert [name for name, _ in order] == ["first", "evaluate", "second"]
    assert len({thread for _, thread in order}) == 1
    assert order[0][1] != threading.get_ident()
