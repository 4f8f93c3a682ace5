"""The collector's MQTT session: persistent, subscribed once per new session, acks only where they belong.

``Session`` connects with a fixed client id and clean session off, so QoS 1 messages wait in the broker while
the collector is away. It subscribes only when the broker did not keep the session (subscribing again would
make the broker send every retained message again, at every reconnect). What is done with a delivered message
is a subclass's ``_deliver``: queue it for the writer in this process
(``collector.ingest.subscriber.Subscriber``), or forward it to the collector from the receiver process
(``collector.ingest.receiver``).

An ack is sent only on the connection that delivered the message: after a reconnect the broker delivers the
unacknowledged ones again, and a packet id may then name another message. The connection number changes on
every connect and disconnect (paho's thread), and ``ack`` compares it and hands the ack to paho under the lock
those callbacks take, so no ack of an earlier connection can slip out on a new one.

Kept light (paho and the protocol's topics only): the receiver process imports it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho

from common.configfile import TlsConfig
from common.mqttclient import Client
from protocol import Topics

if TYPE_CHECKING:
    from collector.config import MqttConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SessionSettings:
    """What the session needs of ``mqtt:`` in the collector's config, without the config's own imports."""

    host: str
    port: int
    client_id: str
    prefix: str
    keepalive: int
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None

    @classmethod
    def of(cls, config: MqttConfig) -> SessionSettings:
        return cls(
            host=config.host,
            port=config.port,
            client_id=config.client_id,
            prefix=config.prefix,
            keepalive=config.keepalive,
            username=config.username,
            password=config.password.get_secret_value() if config.password else None,
            tls=config.tls,
        )

    def __repr__(self) -> str:  # never the password, wherever settings get printed
        return f"SessionSettings({self.client_id!r} at {self.host}:{self.port})"


class Session(ABC):
    """One persistent MQTT session of the collector, subscribed to everything agents publish."""

    def __init__(self, config: SessionSettings) -> None:
        self._config = config
        self._filters = Topics(config.prefix).collector_filters()
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self._connection = 0
        self._connected = False
        self._client = Client(config.client_id, clean_session=False, manual_ack=True)
        self._client.login(config.username, config.password)
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
        """Block until connected with the subscriptions in place; False on timeout."""
        return self._subscribed.wait(timeout)

    def connected(self) -> bool:
        """True while connected to the broker."""
        with self._lock:
            return self._connected

    def stop(self) -> None:
        """Disconnect (the session, with every unacknowledged message, stays on the broker)."""
        self._client.close()

    def ack(self, mid: int, qos: int, connection: int) -> None:
        """Acknowledge message ``mid`` if the connection that delivered it is still the current one.

        paho's ``ack()`` only queues the packet for its network thread (a thread-safe deque append and a
        wake-up byte on a non-blocking socket), so any thread may call this, and it never waits on the
        network.
        """
        with self._lock:
            if connection == self._connection:
                self._client.ack(mid, qos)

    # -- what subclasses do -------------------------------------------------------------------------

    @abstractmethod
    def _deliver(self, message: paho.MQTTMessage, connection: int) -> None:
        """A message arrived on connection number ``connection`` (paho's network thread)."""

    def _changed(self) -> None:  # noqa: B027 - a hook most sessions need not fill
        """The connection or the subscriptions changed (paho's network thread); nothing by default."""

    # -- paho callbacks, on paho's network thread -------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s", self._config.host, self._config.port, reason
            )
            return
        with self._lock:
            self._connection += 1
            self._connected = True
        self._client.connected()
        log.info(
            "connected to broker %s:%s (%s session)",
            self._config.host,
            self._config.port,
            "resumed" if flags.session_present else "new",
        )
        if flags.session_present:
            # The broker kept the subscriptions. Subscribing again would make it send every retained message
            # again, at every reconnect.
            self._subscribed.set()
        else:
            client.subscribe([(topic, 1) for topic in self._filters])
        self._changed()

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        if any(code.is_failure for code in reasons):
            log.warning("broker refused a subscription: %s", ", ".join(str(code) for code in reasons))
            return
        self._subscribed.set()
        self._changed()

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        with self._lock:
            self._connection += 1  # acks of the lost connection must not go out on the next one
            self._connected = False
        self._subscribed.clear()
        if reason.is_failure:
            log.warning("lost the broker connection (%s); reconnecting", reason)
        self._changed()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        # Only this thread (paho's) changes the counter, so it reads it without the lock.
        self._deliver(message, self._connection)
