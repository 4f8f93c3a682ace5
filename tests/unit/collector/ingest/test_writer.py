"""The single writer: a message is acknowledged only once stored, failures are retried, then kept."""

import threading
import time
from collections.abc import Collection, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from collector.ingest.batch import Incoming
from collector.ingest.pipeline import Ingest
from collector.ingest.writer import Job, Message, Writer
from collector.metrics import Metrics
from collector.store.schema import rejected
from tests.support.collector import T0, FakeAgent, migrated_engine


class Store:
    """A handler that fails its first ``failures`` calls, like a database that is down for a while."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.stored: list[str] = []
        self.kept: list[tuple[str, str]] = []

    def handle(self, topic: str, _payload: bytes, _received_at: datetime, **_flags: bool) -> None:
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

    def handle(topic: str, payload: bytes, received_at: datetime, **_flags: bool) -> None:
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

    def broken(_topic: str, _payload: bytes, _received_at: datetime, **_flags: bool) -> None:
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

    def handle(topic: str, _payload: bytes, _received_at: datetime, **_flags: bool) -> None:
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


def down(*_args: object, **_kwargs: object) -> None:
    raise OperationalError("INSERT ...", {}, Exception("unable to open database file"))


def test_when_keeping_fails_too_the_same_message_is_tried_again_until_kept() -> None:
    # The database is down: neither storing nor keeping works, for a while. The message must not be skipped
    # (unacknowledged, it would hold a broker in-flight slot until the next reconnect).
    kept: list[str] = []
    keep_failures = [2]

    def keep(topic: str, _payload: bytes, _error: str, _received_at: datetime) -> None:
        if keep_failures[0]:
            keep_failures[0] -= 1
            down()
        kept.append(topic)

    waits: list[float] = []
    acks: list[int] = []
    writer = Writer(down, keep, wait=lambda s: bool(waits.append(s)))
    writer.process(Message("t", b"{}", T0, ack=lambda: acks.append(1)))
    assert (kept, acks) == (["t"], [1])
    assert waits == [1, 2, 4, 8, 16, 30]  # the backoff goes on, capped at 30 s


def test_a_store_that_works_again_after_keeping_failed_stores_the_message() -> None:
    store, acks = Store(failures=7), []

    def keep(*_args: object) -> None:
        down()

    writer = Writer(store.handle, keep, wait=lambda _: False)
    writer.process(Message("t", b"{}", T0, ack=lambda: acks.append(1)))
    assert (store.stored, acks) == (["t"], [1])


def test_a_failure_while_stopping_ends_the_writer_and_leaves_the_rest_with_the_broker() -> None:
    tried: list[str] = []
    acks: list[str] = []
    metrics = Metrics()

    def handle(topic: str, _payload: bytes, _received_at: datetime, **_flags: bool) -> None:
        tried.append(topic)
        down()

    writer = Writer(handle, Store().keep, metrics=metrics)
    for topic in ("first", "second", "third"):
        writer.put(Message(topic, b"{}", T0, ack=lambda topic=topic: acks.append(topic)))
    writer.start()
    writer.stop()  # the database is locked: one failed store, then the writer ends

    assert not writer.alive()
    assert tried == ["first"]
    assert acks == []
    assert sample(metrics, "hezo_ingest_queue_depth") == 0


def test_an_ack_that_raises_does_not_end_the_writer() -> None:
    store = Store()
    done = threading.Event()

    def broken_ack() -> None:
        raise RuntimeError("the client is gone")

    writer = Writer(store.handle, store.keep)
    writer.put(Message("first", b"{}", T0, ack=broken_ack))
    writer.put(Message("second", b"{}", T0))
    writer.put(Job(done.set, "done"))
    writer.start()
    try:
        assert done.wait(10), "the writer died on the failed ack"
        assert writer.alive()
    finally:
        writer.stop()
    assert store.stored == ["first", "second"]


def test_the_queue_is_bounded_so_a_flood_waits_for_the_writer() -> None:
    flooded = threading.Event()
    depths: list[int] = []
    metrics = Metrics()

    def handle(_topic: str, _payload: bytes, _received_at: datetime, **_flags: bool) -> None:
        # Unbounded, the whole flood would be queued before the first message is written.
        if not depths:
            flooded.wait(0.5)
        depths.append(int(sample(metrics, "hezo_ingest_queue_depth")))

    writer = Writer(handle, Store().keep, metrics=metrics, maxsize=3)
    writer.start()
    try:

        def flood() -> None:
            for number in range(20):
                writer.put(Message(f"m{number}", b"{}", T0))
            flooded.set()

        producer = threading.Thread(target=flood)
        producer.start()
        producer.join(30)
        assert not producer.is_alive()
    finally:
        writer.stop()
    assert len(depths) == 20
    assert max(depths) <= 3 + 1  # the queue, and the message being written


def test_a_put_on_a_full_queue_gives_up_once_the_writer_has_stopped() -> None:
    # paho's network thread waits in put() while the queue is full. A writer that stopped (on a failure, say)
    # takes nothing any more: put must not wait for ever, since the subscriber's stop joins that thread.
    writer = Writer(down, Store().keep, maxsize=1)
    writer.put(Message("first", b"{}", T0))
    writer.start()
    writer.stop()
    producer = threading.Thread(
        target=lambda: [writer.put(Message(f"late-{n}", b"{}", T0)) for n in range(3)], daemon=True
    )
    producer.start()
    producer.join(10)
    assert not producer.is_alive(), "put waits for ever on a writer that has stopped"
    assert not writer.alive()


class Batches:
    """A batch handler that records each batch it stored, failing its first ``failures`` calls."""

    def __init__(self, log: list[str], failures: int = 0) -> None:
        self.log = log
        self.failures = failures

    def __call__(self, batch: Sequence[Incoming], *, redelivered: Collection[int] = ()) -> None:
        if self.failures:
            self.failures -= 1
            raise OperationalError("INSERT ...", {}, Exception("database is locked"))
        self.log.append("commit " + ",".join(topic for topic, *_ in batch))


def queued_writer(log: list[str], batches: Batches, items: list[Message | Job]) -> Writer:
    store = Store()

    def handle(topic: str, payload: bytes, received_at: datetime, **_flags: bool) -> None:
        store.handle(topic, payload, received_at)
        log.append(f"stored {topic}")

    writer = Writer(handle, store.keep, wait=lambda _: False, handle_batch=batches, batch_size=3)
    for item in items:
        writer.put(item)
    return writer


def run_until_done(writer: Writer) -> None:
    done = threading.Event()
    writer.put(Job(done.set, "done"))
    writer.start()
    try:
        assert done.wait(10)
    finally:
        writer.stop()


def test_a_batch_is_acknowledged_only_after_its_commit() -> None:
    log: list[str] = []
    items: list[Message | Job] = [
        Message(t, b"{}", T0, ack=lambda t=t: log.append(f"ack {t}")) for t in ("a", "b", "c", "d")
    ]
    writer = queued_writer(log, Batches(log), items)
    run_until_done(writer)
    assert log == ["commit a,b,c", "ack a", "ack b", "ack c", "commit d", "ack d"]


def test_a_job_ends_a_batch_and_runs_after_the_messages_before_it() -> None:
    log: list[str] = []
    items: list[Message | Job] = [
        Message("a", b"{}", T0),
        Job(lambda: log.append("job"), "job"),
        Message("b", b"{}", T0),
    ]
    writer = queued_writer(log, Batches(log), items)
    run_until_done(writer)
    assert log == ["commit a", "job", "commit b"]


def test_a_failed_batch_is_stored_one_message_at_a_time() -> None:
    log: list[str] = []
    items: list[Message | Job] = [
        Message(t, b"{}", T0, ack=lambda t=t: log.append(f"ack {t}")) for t in ("a", "b")
    ]
    writer = queued_writer(log, Batches(log, failures=1), items)
    run_until_done(writer)
    assert log == ["stored a", "ack a", "stored b", "ack b"]


def test_a_message_the_store_refuses_for_itself_is_kept_at_once_and_the_next_goes_on() -> None:
    from collector.ingest.pipeline import transient

    store, waits, acks = Store(), [], []

    def handle(topic: str, payload: bytes, received_at: datetime, **_flags: bool) -> None:
        if topic == "poison":
            raise OverflowError("date value out of range")
        store.handle(topic, payload, received_at)

    def handle_batch(items: Sequence[Incoming], *, redelivered: Collection[int] = ()) -> None:
        for topic, payload, received_at, _retained in items:  # one transaction: the poison fails it all
            handle(topic, payload, received_at)

    writer = Writer(
        handle,
        store.keep,
        wait=lambda s: bool(waits.append(s)),
        handle_batch=handle_batch,
        transient=transient,
    )
    poison = Message("poison", b"{}", T0, ack=lambda: acks.append("poison"))
    assert writer.process_batch([poison, Message("t", b"{}", T0, ack=lambda: acks.append("t"))])
    assert waits == []  # no retry delay: nothing behind the poison waited
    assert store.kept == [("poison", "OverflowError: date value out of range")]
    assert (store.stored, acks) == (["t"], ["poison", "t"])


def test_a_database_that_is_away_is_still_waited_for() -> None:
    from collector.ingest.pipeline import transient

    store, waits = Store(failures=2), []
    writer = Writer(store.handle, store.keep, wait=lambda s: bool(waits.append(s)), transient=transient)
    writer.process(Message("t", b"{}", T0))
    assert waits == [1, 2]
    assert (store.stored, store.kept) == (["t"], [])


def test_a_writer_stuck_with_messages_waiting_says_so() -> None:
    release = threading.Event()
    started = threading.Event()

    def handle(topic: str, payload: bytes, received_at: datetime, **_flags: bool) -> None:
        started.set()
        release.wait()

    writer = Writer(handle, Store().keep)
    writer.start()
    try:
        assert writer.stalled(after=0) is None  # nothing waits
        writer.put(Message("first", b"{}", T0))
        assert started.wait(10)
        writer.put(Message("second", b"{}", T0))
        assert writer.stalled(after=0) == writer.stalled(after=0)  # stable while stuck
        found = writer.stalled(after=0)
        assert found is not None
        assert "while 1 messages wait" in found
        assert writer.stalled(after=3600) is None  # not yet past the limit asked
    finally:
        release.set()
        writer.stop()


class WorkClock:
    """``time`` for the writer, whose ``perf_counter`` moves only when the work below says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.monotonic = time.monotonic

    def perf_counter(self) -> float:
        return self.now


def test_the_writer_counts_its_busy_seconds_by_work(monkeypatch: pytest.MonkeyPatch) -> None:
    clock, metrics = WorkClock(), Metrics()
    monkeypatch.setattr("collector.ingest.writer.time", clock)

    def batches(batch: Sequence[Incoming], *, redelivered: Collection[int] = ()) -> None:
        clock.now += 2.0 * len(batch)

    def evaluate() -> None:
        clock.now += 0.5

    writer = Writer(Store().handle, Store().keep, metrics=metrics, handle_batch=batches, batch_size=3)
    for item in (Message("a", b"{}", T0), Job(evaluate, "incident evaluation"), Message("b", b"{}", T0)):
        writer.put(item)
    run_until_done(writer)
    busy = "hezo_writer_busy_seconds_total"
    assert metrics.registry.get_sample_value(busy, {"work": "ingest"}) == 4.0
    assert metrics.registry.get_sample_value(busy, {"work": "incident evaluation"}) == 0.5


def test_a_job_is_queued_on_a_full_queue_without_waiting() -> None:
    # The writer queues its next evaluation itself: waiting for room there would wait on itself.
    writer = Writer(Store().handle, Store().keep, maxsize=1)
    writer.put(Message("m", b"{}", T0))
    queued = threading.Event()
    producer = threading.Thread(target=lambda: (writer.put(Job(lambda: None, "next")), queued.set()))
    producer.start()
    producer.join(10)
    try:
        assert queued.is_set(), "a job waited for room in the queue"
    finally:
        writer.stop()


def test_a_queue_half_full_is_a_backlog() -> None:
    writer = Writer(Store().handle, Store().keep, maxsize=4)
    writer.put(Message("a", b"{}", T0))
    assert not writer.backlogged()
    writer.put(Job(lambda: None, "a job"))
    writer.put(Message("b", b"{}", T0))
    assert writer.backlogged()
