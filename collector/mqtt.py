"""The collector's MQTT side: a persistent-session subscriber and the one thread that writes.

paho's network thread only timestamps each message and queues it. A single writer thread drains the queue:
it stores each message, then acknowledges it to the broker (paho's manual acks), so a message the collector
has not stored yet is still the broker's to deliver again after a crash. The incident engine's evaluations go
through the same queue, so ingest and ticket decisions never interleave. The session is persistent (fixed
client id, clean session off), so QoS 1 messages wait in the broker while the collector restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho

from agent.mqttclient import Client
from collector.config import MqttConfig
from collector.metrics import Metrics
from collector.store import utcnow
from protocol import Topics

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, datetime], None]
Keeper = Callable[[str, bytes, str, datetime], None]

#: How often the writer tries to store one message before it keeps it as rejected (``store-error``).
STORE_TRIES = 5
FIRST_RETRY_DELAY = 1.0
MAX_RETRY_DELAY = 30.0


@dataclass(frozen=True)
class Message:
    """One message from the broker, and how to acknowledge it once stored (None: nothing to ack)."""

    topic: str
    payload: bytes
    received_at: datetime
    ack: Callable[[], None] | None = None


@dataclass(frozen=True)
class Job:
    """Work that must not interleave with ingest, such as an evaluation of the ticket rule."""

    run: Callable[[], object]
    name: str


_STOP = object()


class Writer:
    """The single thread that writes: messages and jobs, one at a time, in the order they were queued.

    A message whose storing raises (the database is down) is tried again after 1 s, doubling to 30 s; after
    ``STORE_TRIES`` failures it is handed to ``keep`` (stored as rejected with the error) and acknowledged.
    ``wait(seconds)`` sleeps between tries and returns True when the writer is stopping, which leaves the
    message unacknowledged for the broker to deliver again.
    """

    def __init__(
        self,
        handle: Handler,
        keep: Keeper,
        *,
        metrics: Metrics | None = None,
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self._handle = handle
        self._keep = keep
        self._metrics = metrics
        self._queue: queue.Queue[object] = queue.Queue()
        self._stopping = threading.Event()
        self._wait = wait if wait is not None else self._stopping.wait
        self._thread = threading.Thread(target=self._run, name="hezo-collector-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued (without retrying failures), then end the thread."""
        self._stopping.set()
        self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join()

    def put(self, item: Message | Job) -> None:
        if isinstance(item, Message) and self._metrics is not None:
            self._metrics.queue_depth.inc()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Message | Job)
            self.process(item)

    def process(self, item: Message | Job) -> None:
        """Do one item now, on the calling thread (the writer thread, or a test)."""
        if isinstance(item, Job):
            try:
                item.run()
            except Exception:
                # A database hiccup must not end ticketing; the next round tries again.
                log.exception("%s failed", item.name)
            return
        try:
            if self._store(item) and item.ack is not None:
                item.ack()
        finally:
            if self._metrics is not None:
                self._metrics.queue_depth.dec()

    def _store(self, message: Message) -> bool:
        """Store ``message``; True when it is safe to acknowledge."""
        delay = FIRST_RETRY_DELAY
        error = ""
        for attempt in range(1, STORE_TRIES + 1):
            try:
                self._handle(message.topic, message.payload, message.received_at)
            except Exception as exc:  # noqa: BLE001 - whatever the store raised, retry, then keep the message
                error = f"{type(exc).__name__}: {exc}"
                if self._metrics is not None:
                    self._metrics.store_errors.inc()
                log.warning(
                    "could not store the message on %s (try %d of %d): %s",
                    message.topic,
                    attempt,
                    STORE_TRIES,
                    error,
                )
            else:
                return True
            if attempt < STORE_TRIES:
                if self._wait(delay):
                    log.warning("stopping: the message on %s stays with the broker", message.topic)
                    return False
                delay = min(delay * 2, MAX_RETRY_DELAY)
        try:
            self._keep(message.topic, message.payload, error, message.received_at)
        except Exception:
            log.exception("could not keep the unstorable message on %s; the broker keeps it", message.topic)
            return False
        log.error("gave up storing the message on %s after %d tries: %s", message.topic, STORE_TRIES, error)
        return True


class Subscriber:
    """Subscribes to everything agents publish and feeds it, in order, to the writer."""

    def __init__(
        self,
        config: MqttConfig,
        writer: Writer,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._config = config
        self._writer = writer
        self._now = now
        self._filters = Topics(config.prefix).collector_filters()
        self._subscribed = threading.Event()
        # Acks are only sent on the connection that delivered the message: after a reconnect the broker
        # delivers the unacknowledged ones again, and a packet id may then name another message.
        self._connection = 0
        self._client = Client(config.client_id, clean_session=False, manual_ack=True)
        self._client.login(config.username, config.password.get_secret_value() if config.password else None)
        self._client.use_tls(config.tls)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Connect in the background (paho retries until the broker is there)."""
        self._client.connect_async(self._config.host, self._config.port, keepalive=self._config.keepalive)
        self._client.loop_start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the broker has acknowledged the subscriptions; False on timeout."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Disconnect (the session, with every unacknowledged message, stays on the broker)."""
        self._client.disconnect()
        self._client.loop_stop()

    # -- paho callbacks, on paho's network thread -------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s", self._config.host, self._config.port, reason
            )
            return
        self._connection += 1
        self._client.connected()
        log.info("connected to broker %s:%s", self._config.host, self._config.port)
        # Subscribe on every connect: with a persistent session it is harmless, and it covers a lost session.
        client.subscribe([(topic, 1) for topic in self._filters])

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if any(code.is_failure for code in reasons):
            log.warning("broker refused a subscription: %s", ", ".join(str(code) for code in reasons))
            return
        self._subscribed.set()

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        self._subscribed.clear()
        if reason.is_failure:
            log.warning("lost the broker connection (%s); reconnecting", reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        ack = None
        if message.qos > 0:
            ack = self._acker(message.mid, message.qos, self._connection)
        self._writer.put(Message(message.topic, bytes(message.payload), self._now(), ack))

    def _acker(self, mid: int, qos: int, connection: int) -> Callable[[], None]:
        def ack() -> None:
            # paho's ack() only queues the packet for its network thread (a thread-safe deque append and a
            # wake-up), so the writer thread may call it.
            if connection == self._connection:
                self._client.ack(mid, qos)

        return ack
