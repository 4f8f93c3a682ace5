"""The collector's MQTT side: a persistent-session subscriber and the one worker that writes.

paho's network thread only timestamps each message and queues it; a single worker thread drains the
queue into ``handle`` so database writes happen one at a time, in arrival order. The session is
persistent (fixed client id, clean session off), so QoS 1 messages wait in the broker while the
collector restarts.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import MqttConfig
from collector.metrics import Metrics
from collector.store import utcnow
from protocol import Topics

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, datetime], None]
_STOP = None


class Subscriber:
    """Subscribes to everything agents publish and feeds it, in order, to ``handle``."""

    def __init__(
        self,
        config: MqttConfig,
        handle: Handler,
        *,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._config = config
        self._handle = handle
        self._metrics = metrics
        self._now = now
        self._filters = Topics(config.prefix).collector_filters()
        self._queue: queue.Queue[tuple[str, bytes, datetime] | None] = queue.Queue()
        self._subscribed = threading.Event()
        self._worker = threading.Thread(target=self._drain, name="hezo-collector-ingest", daemon=True)
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
        )
        if config.username is not None:
            password = config.password.get_secret_value() if config.password is not None else None
            self._client.username_pw_set(config.username, password)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message

    def start(self) -> None:
        """Start the worker, then connect in the background (paho retries until the broker is there)."""
        self._worker.start()
        self._client.connect_async(
            self._config.host, self._config.port, keepalive=int(self._config.keepalive)
        )
        self._client.loop_start()

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the broker has acknowledged the subscriptions; False on timeout."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        """Disconnect (the session stays on the broker), then write what is queued and stop the worker."""
        self._client.disconnect()
        self._client.loop_stop()
        self._queue.put(_STOP)
        if self._worker.is_alive():
            self._worker.join()

    # -- paho callbacks, on paho's network thread -------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s", self._config.host, self._config.port, reason
            )
            return
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
        self._queue.put((message.topic, bytes(message.payload), self._now()))
        if self._metrics is not None:
            self._metrics.queue_depth.inc()

    # -- the worker -------------------------------------------------------------------------------

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            topic, payload, received_at = item
            try:
                self._handle(topic, payload, received_at)
            except Exception:
                # A store failure must not end ingestion; the message is lost to this collector, say so.
                log.exception("could not store the message on %s", topic)
            finally:
                if self._metrics is not None:
                    self._metrics.queue_depth.dec()
