"""The one thread that writes.

The MQTT session (in the receiver process, ``receiver``, or on a thread, ``subscriber``) hands each message
to the writer's queue. A single writer thread drains the queue: it takes up to ``BATCH_SIZE`` messages at a
time (waiting at most ``BATCH_WAIT`` for more), stores them in one transaction, then acknowledges them to the
broker (paho's manual acks, through the receiver process when there is one), so a message the collector has
not committed yet is still the broker's to deliver again after a crash. The incident engine's evaluations go
through the same queue, so ingest and ticket decisions never interleave. The session is persistent (fixed
client id, clean session off), so QoS 1 messages wait in the broker while the collector restarts.

The queue is bounded (``QUEUE_SIZE``): when it is full, the thread that reads waits in ``put`` until the
writer takes messages, which holds back reading from the broker (backpressure; QoS 1 messages wait in the
broker). This cannot deadlock with the acks: the writer never waits on the thread that reads. paho's ``ack()``
only appends to a deque and writes a wake-up byte to a non-blocking socket; acks for the receiver process go
on its socket pair, whose other end a thread of their own reads. Once the writer is stopping, ``put`` stops
waiting and leaves the message unacknowledged, for the broker to deliver again.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple, Protocol

from collector.metrics import Metrics

log = logging.getLogger(__name__)


class Handler(Protocol):
    def __call__(
        self,
        topic: str,
        payload: bytes,
        received_at: datetime,
        *,
        retained: bool = False,
        redelivered: bool = False,
    ) -> None: ...


Keeper = Callable[[str, bytes, str, datetime], None]


#: Stores a batch of (topic, payload, received_at, retained) in one transaction, or raises (nothing stored).
class BatchHandler(Protocol):
    def __call__(
        self, items: Sequence[tuple[str, bytes, datetime, bool]], *, redelivered: Collection[int] = ()
    ) -> None: ...


class Inbox(Protocol):
    """Where a session puts what it receives: the writer's queue."""

    def put(self, item: Message) -> None: ...


#: How often the writer tries to store one message before it tries to keep it as rejected (``store-error``).
STORE_TRIES = 5
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0
#: Messages received and not yet written; past this paho's network thread waits (backpressure).
QUEUE_SIZE = 10_000
#: At most this many messages per transaction, and at most this long (seconds) waiting to fill a batch.
BATCH_SIZE = 500
BATCH_WAIT = 0.005
#: How often a ``put`` waiting on a full queue looks whether the writer is stopping.
_PUT_POLL = 0.1


class Message(NamedTuple):
    """One message from the broker, and how to acknowledge it once stored (None: nothing to ack).

    A named tuple: made once per message on the receiving thread, it costs a third of a frozen dataclass.
    """

    topic: str
    payload: bytes
    received_at: datetime
    ack: Callable[[], None] | None = None
    retained: bool = False
    #: The broker delivered it before (MQTT's DUP flag, JetStream's delivery count): not acknowledged then.
    redelivered: bool = False


@dataclass(frozen=True)
class Job:
    """Work that must not interleave with ingest, such as an evaluation of the ticket rule."""

    run: Callable[[], object]
    name: str


_STOP = object()

#: The cyclic garbage collector's thresholds while the writer runs (``gc.set_threshold``).
GC_THRESHOLDS = (10_000, 50, 100)


def tune_gc() -> None:
    """Collect garbage less often: each message leaves a few dozen young containers (its JSON, envelope, rows)
    and up to ``QUEUE_SIZE`` messages wait, so the defaults (700, 10, 10) ran a collection every few
    messages and a full one, over every object of the process, every few batches: a third of the ingest
    rate. A threshold set higher elsewhere is kept; memory grows by no more than the young objects allowed
    to wait (some 10,000) and the garbage of the rarer full collections."""
    current = gc.get_threshold()
    gc.set_threshold(*(max(now, wanted) for now, wanted in zip(current, GC_THRESHOLDS, strict=True)))


class Writer:
    """The single thread that writes: messages and jobs, in the order they were queued.

    With ``handle_batch``, consecutive messages go in batches: up to ``batch_size``, or what arrives within
    ``batch_wait`` seconds of the first, stored in one transaction and acknowledged after its commit. A job
    ends a batch (it runs after the messages queued before it). A batch whose transaction fails is rolled
    back as a whole and its messages are then stored one by one, as below.

    A message whose storing raises because of the message itself (``transient(exc)`` is False: a value the
    database refuses, a bug on one payload) is handed to ``keep`` at once, so it holds up nothing behind it.
    One whose storing raises because the database is away or busy is tried again after 1 s, doubling to
    30 s; after ``STORE_TRIES`` failures it is handed to ``keep`` (stored as rejected with the error) and
    acknowledged.
    If keeping fails too, the writer goes on trying to store, then keep, the same message, every 30 s at
    most, until one succeeds: it never skips a message, which would leave it unacknowledged, holding one of
    the broker's in-flight slots until the next reconnect while later messages overtake it.

    ``wait(seconds)`` sleeps between tries and returns True when the writer is stopping. Once stopping, the
    first failure ends the writer: that message and everything after it stay unacknowledged, for the broker
    to deliver again in the next session.
    """

    def __init__(
        self,
        handle: Handler,
        keep: Keeper,
        *,
        metrics: Metrics | None = None,
        wait: Callable[[float], bool] | None = None,
        maxsize: int = QUEUE_SIZE,
        handle_batch: BatchHandler | None = None,
        batch_size: int = BATCH_SIZE,
        batch_wait: float = BATCH_WAIT,
        flush_acks: Callable[[], None] | None = None,
        transient: Callable[[BaseException], bool] | None = None,
    ) -> None:
        self._handle = handle
        self._transient = transient if transient is not None else _always
        self._flush_acks = flush_acks
        self._handle_batch = handle_batch
        self._batch_size = batch_size
        self._batch_wait = batch_wait
        self._held: object | None = None  # a job or stop taken while filling a batch, done next
        self._keep = keep
        self._metrics = metrics
        # A C queue (a put or get costs a fraction of queue.Queue's): the bound is kept by ``put`` itself.
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._maxsize = maxsize
        self._room = threading.Condition()  # a put waiting for room, woken when the writer takes
        self._waiting = 0  # puts waiting for room (changed under ``_room``)
        self._stopping = threading.Event()
        self._wait = wait if wait is not None else self._stopping.wait
        self._thread = threading.Thread(target=self._run, name="hezo-collector-writer", daemon=True)
        #: When the writer last finished an item (monotonic): a writer stuck on one shows in ``stalled``.
        self._progress = time.monotonic()

    def stalled(self, after: float) -> str | None:
        """What is wrong when messages wait and nothing was finished for ``after`` seconds; else None."""
        waiting = self._queue.qsize()
        quiet = time.monotonic() - self._progress
        if waiting and quiet > after:
            return f"the writer has finished nothing for {quiet:.0f} s while {waiting} messages wait"
        return None

    def backlogged(self) -> bool:
        """Messages pile up: the queue is half full (the broker may hold more). No agent's clock in it."""
        return self._queue.qsize() >= self._maxsize // 2

    def start(self) -> None:
        """Start the writer thread, with the garbage collector set for a stream of messages (below)."""
        tune_gc()
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()  # the writer thread runs

    def stop(self) -> None:
        """Write what is queued (stopping at the first failure, without retrying), then end the thread."""
        self._stopping.set()
        # Wakes a writer waiting on an empty queue; with a full one, the writer drains it and ends there.
        self._queue.put(_STOP)
        with self._room:
            self._room.notify_all()  # a put waiting for room gives up now
        if self._thread.is_alive():
            self._thread.join()

    def put(self, item: Message | Job) -> None:
        """Queue ``item``, waiting while the queue is full; once stopping, drop it (the broker keeps it). The
        bound is for messages, from one producer (paho's network thread); a job never waits (the writer
        itself may queue the next evaluation, which must not wait on itself)."""
        full = isinstance(item, Message) and self._queue.qsize() >= self._maxsize
        if self._stopping.is_set() or (full and not self._wait_for_room()):
            log.debug("stopping: not queued, the broker keeps it: %s", item)
            return
        self._queue.put(item)
        if self._metrics is not None and isinstance(item, Message):
            self._metrics.queue_depth.inc()

    def _wait_for_room(self) -> bool:
        """Wait until the queue has room (True) or the writer is stopping (False)."""
        with self._room:
            self._waiting += 1
            try:
                while self._queue.qsize() >= self._maxsize:
                    if self._stopping.is_set():
                        return False
                    self._room.wait(_PUT_POLL)
            finally:
                self._waiting -= 1
        return not self._stopping.is_set()

    def _made_room(self) -> None:
        """The writer took from the queue: wake a put waiting for room, if any (once per batch, not per item).

        A put counts itself as waiting before it looks at the queue's size, under ``_room``, and the writer
        takes before it reads the count: either the put sees the room, or the writer sees the put.
        """
        if self._waiting:
            with self._room:
                self._room.notify_all()

    def _next(self) -> object:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if not self._stopping.is_set():
            item = self._queue.get()
            self._made_room()
            return item
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return _STOP

    def _run(self) -> None:
        while True:
            item = self._next()
            if item is _STOP:
                return
            assert isinstance(item, Message | Job)
            started = 0.0
            try:
                if isinstance(item, Message) and self._handle_batch is not None:
                    batch = self._fill(item)  # waiting for the batch to fill is not work
                    started = time.perf_counter()
                    done = self.process_batch(batch)
                else:
                    started = time.perf_counter()
                    done = self.process(item)
            except Exception:
                log.exception("the writer failed on %s; going on", item)
                continue
            finally:
                self._progress = time.monotonic()
                self._flushed()
                _count_busy(self._metrics, item, started)
            if not done and self._stopping.is_set():
                self._forget_queued()
                return

    def _flushed(self) -> None:
        """Send the acks the last item made (``flush_acks``: the receiver process takes them in one frame)."""
        if self._flush_acks is None:
            return
        try:
            self._flush_acks()
        except Exception:
            # Stored: at worst the broker delivers them again, and their identities make that harmless.
            log.exception("could not send the acknowledgements of stored messages")

    def _forget_queued(self) -> None:
        """Stopping after a failure: leave the rest unacknowledged, with the broker."""
        left = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, Message):
                left += 1
                if self._metrics is not None:
                    self._metrics.queue_depth.dec()
        log.warning("stopping: %d more queued messages stay with the broker", left)

    def _fill(self, first: Message) -> list[Message]:
        """``first`` and the messages right behind it, up to the batch size or the batch wait."""
        batch = [first]
        deadline = time.monotonic() + self._batch_wait
        while len(batch) < self._batch_size:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0 or self._stopping.is_set():
                    break
                try:
                    item = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if not isinstance(item, Message):
                self._held = item
                break
            batch.append(item)
        self._made_room()
        return batch

    def process_batch(self, batch: list[Message]) -> bool:
        """Store ``batch`` in one transaction and ack it; on failure, one by one. False if not all done."""
        assert self._handle_batch is not None
        try:
            self._handle_batch(
                [(m.topic, m.payload, m.received_at, m.retained) for m in batch],
                redelivered=[index for index, m in enumerate(batch) if m.redelivered],
            )
        except Exception as exc:  # noqa: BLE001 - whatever the store raised, the messages go one by one
            if self._metrics is not None:
                self._metrics.store_errors.inc()
            log.warning(
                "could not store a batch of %d messages (%s: %s); storing them one by one",
                len(batch),
                type(exc).__name__,
                exc,
            )
            for index, message in enumerate(batch):
                if not self.process(message):
                    _uncount(self._metrics, len(batch) - index - 1)
                    return False
            return True
        if self._metrics is not None:
            self._metrics.batch_size.inc()
            self._metrics.queue_depth.dec(len(batch))
        for message in batch:
            _ack(message)
        return True

    def process(self, item: Message | Job) -> bool:
        """Do one item now, on the calling thread (the writer thread, or a test); False if not done."""
        if isinstance(item, Job):
            if self._stopping.is_set():
                return True  # the next start evaluates again
            try:
                item.run()
            except Exception:
                # A database hiccup must not end ticketing; the next round tries again.
                log.exception("%s failed", item.name)
            return True
        try:
            stored = self._store(item)
            if stored:
                _ack(item)
            return stored
        finally:
            if self._metrics is not None:
                self._metrics.queue_depth.dec()

    def _store(self, message: Message) -> bool:
        """Store ``message``, or keep it as rejected; True when it is safe to acknowledge.

        False only when the writer is stopping: the message then stays with the broker.
        """
        delay = FIRST_RETRY_DELAY
        attempt = 0
        while True:
            attempt += 1
            try:
                self._handle(
                    message.topic,
                    message.payload,
                    message.received_at,
                    retained=message.retained,
                    redelivered=message.redelivered,
                )
            except Exception as exc:  # noqa: BLE001 - whatever the store raised, retry, then keep the message
                error = f"{type(exc).__name__}: {exc}"
                if self._metrics is not None:
                    self._metrics.store_errors.inc()
                log.warning("could not store the message on %s (try %d): %s", message.topic, attempt, error)
                poison = not self._transient(exc)
            else:
                return True
            if (poison or attempt >= STORE_TRIES) and self._kept(message, error, attempt):
                return True
            if self._stopping.is_set() or self._wait(delay):
                log.warning("stopping: the message on %s stays with the broker", message.topic)
                return False
            delay = min(delay * 2, MAX_RETRY_DELAY)

    def _kept(self, message: Message, error: str, attempt: int) -> bool:
        try:
            self._keep(message.topic, message.payload, error, message.received_at)
        except Exception as exc:  # noqa: BLE001 - the database is down: try the same message again later
            log.error(  # noqa: TRY400 - the error text says it all, every 30 s
                "could not keep the unstorable message on %s either (%s: %s); trying it again",
                message.topic,
                type(exc).__name__,
                exc,
            )
            return False
        log.error("gave up storing the message on %s after %d tries: %s", message.topic, attempt, error)
        return True


def _ack(message: Message) -> None:
    """Acknowledge ``message``, stored: should that fail, the broker delivers it again, which its identity
    (or, for a bad one, its being a copy) makes harmless."""
    if message.ack is not None:
        try:
            message.ack()
        except Exception:
            log.exception("could not acknowledge the message on %s", message.topic)


def _count_busy(metrics: Metrics | None, item: Message | Job, started: float) -> None:
    """Count the seconds since ``started`` as work on ``item`` (``hezo_writer_busy_seconds_total``)."""
    if metrics is not None and started:
        work = item.name if isinstance(item, Job) else "ingest"
        metrics.writer_busy.labels(work=work).inc(time.perf_counter() - started)


def _uncount(metrics: Metrics | None, left: int) -> None:
    """Messages of a failed batch left with the broker are no longer queued."""
    if metrics is not None and left:
        metrics.queue_depth.dec(left)


def _always(_exc: BaseException) -> bool:
    """Without a better judge, every failure may pass: retry."""
    return True
