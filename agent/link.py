"""The agent's MQTT link: birth and death on the status topic, QoS 1 publishing, reconnect with backoff.

paho-mqtt runs its network loop in its own thread; everything that builds messages runs on the asyncio loop,
and connection callbacks hop over with ``call_soon_threadsafe``. The death message is registered as the MQTT
will before every connection attempt, so the broker announces the agent offline if it vanishes.
"""

import asyncio
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from agent import __version__
from agent.config import AgentConfig
from agent.mqttclient import Client
from protocol import Envelope, Topics, encode, format_ts

log = logging.getLogger(__name__)


def new_boot_id() -> str:
    """A boot id that sorts after this agent's earlier ones: start time in ms (12 hex digits), 4 random."""
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(2)}"


class Sequencer:
    """Makes envelopes for one agent boot: a fresh ``boot`` id and a strictly increasing ``seq``."""

    def __init__(self, site: str, agent: str, boot: str | None = None) -> None:
        self.site = site
        self.agent = agent
        self.boot = boot or new_boot_id()
        self._seq = 0
        self._lock = threading.Lock()

    def make(self, kind: str, body: dict[str, Any]) -> Envelope:
        with self._lock:
            self._seq += 1
            seq = self._seq
        return Envelope(self.site, self.agent, self.boot, seq, format_ts(datetime.now(UTC)), kind, body)


class Link:
    """Publishes the agent's messages; calls ``on_connected`` on the asyncio loop after each (re)connect."""

    def __init__(
        self, config: AgentConfig, loop: asyncio.AbstractEventLoop, on_connected: Callable[[], None]
    ) -> None:
        self.config = config
        self.topics = Topics(config.mqtt.prefix)
        self.sequencer = Sequencer(config.site, config.agent)
        self._loop = loop
        self._on_connected = on_connected
        self._will_seq = 0
        self._connected = False
        self._stopping = False
        self.dropped = 0
        # Unacknowledged messages = sent - acknowledged; each counter has one writer (asyncio / paho thread).
        self._sent = 0
        self._acknowledged = 0
        #: Called on the asyncio loop with each payload on the agent's cmd topic (agent/commands.py).
        self.on_command: Callable[[bytes], None] | None = None
        self.client = self._make_client()

    def _make_client(self) -> Client:
        cfg = self.config.mqtt
        client = Client(self.config.client_id, clean_session=True)
        client.login(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        client.use_tls(cfg.tls)
        client.max_inflight_messages_set(cfg.max_inflight)
        # paho's own cap would refuse a birth or a goodbye like telemetry; the cap is ours (_publish).
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_pre_connect = self._register_will
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_acknowledged
        client.on_message = self._handle_message
        return client

    @property
    def status_topic(self) -> str:
        return self.topics.status(self.config.site, self.config.agent)

    def _register_will(self, client: mqtt.Client, _userdata: object) -> None:
        death = self.sequencer.make("death", {"state": "offline", "reason": "connection-lost"})
        self._will_seq = death.seq
        client.will_set(self.status_topic, encode(death), qos=1, retain=True)

    def _handle_connect(
        self, _client: mqtt.Client, _userdata: object, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            log.warning(
                "broker %s:%s refused the connection: %s",
                self.config.mqtt.host,
                self.config.mqtt.port,
                reason,
            )
            return
        self._connected = True
        self.client.connected()
        log.info("connected to broker %s:%s", self.config.mqtt.host, self.config.mqtt.port)
        if self.on_command is not None:  # clean session: subscribe again on every connect
            self.client.subscribe(self.topics.cmd(self.config.site, self.config.agent), qos=1)
        # Read the will's seq here: a quick reconnect could register the next will before the loop runs.
        self._loop.call_soon_threadsafe(self._after_connect, self._will_seq)

    def _handle_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self._connected and not self._stopping:
            log.warning("lost the broker (%s); reconnecting with backoff", reason)
        self._connected = False

    def _after_connect(self, will_seq: int) -> None:
        self.publish_birth(will_seq)
        self._on_connected()

    def birth_body(self, will_seq: int) -> dict[str, Any]:
        return {
            "state": "online",
            "version": __version__,
            "hostname": socket.gethostname(),
            "will_seq": will_seq,
            "dropped": self.dropped,
            "devices": [
                {
                    "id": device.id,
                    "model": device.model,
                    "serial": device.serial,
                    "name": device.name,
                    "room": self.config.room_of(device),
                    "contract": self.config.contract_of(device),
                }
                for device in self.config.devices
            ],
        }

    def publish_birth(self, will_seq: int) -> None:
        birth = self.sequencer.make("birth", self.birth_body(will_seq))
        self._publish(self.status_topic, birth, retain=True)

    def publish_state(self, body: dict[str, Any]) -> None:
        topic = self.topics.state(self.config.site, self.config.agent, body["device"])
        self._publish(topic, self.sequencer.make("state", body), retain=True)

    def publish_event(self, body: dict[str, Any]) -> None:
        self._publish(
            self.topics.event(self.config.site, self.config.agent), self.sequencer.make("event", body)
        )

    def publish_telemetry(self, samples: list[dict[str, Any]]) -> None:
        body = {"samples": samples}
        self._publish(
            self.topics.telemetry(self.config.site, self.config.agent), self.sequencer.make("telemetry", body)
        )

    def publish_reply(self, body: dict[str, Any]) -> None:
        self._publish(
            self.topics.reply(self.config.site, self.config.agent), self.sequencer.make("reply", body)
        )

    def _handle_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        if self.on_command is not None:
            self._loop.call_soon_threadsafe(self.on_command, bytes(message.payload))

    @property
    def unacknowledged(self) -> int:
        return self._sent - self._acknowledged

    def _handle_acknowledged(
        self, _client: Any, _userdata: Any, _mid: int, _reason: Any, _props: Any
    ) -> None:
        self._acknowledged += 1

    def _publish(self, topic: str, envelope: Envelope, retain: bool = False) -> mqtt.MQTTMessageInfo | None:
        """Queue a QoS 1 message; past ``max_queued`` unacknowledged ones, telemetry is dropped and counted.

        Births, deaths, states and events always go: without them the collector would hold a live agent
        offline, a gone one online, or a dead device up, and ticket wrongly. They are few (one per change).
        """
        if envelope.kind == "telemetry" and self.unacknowledged >= self.config.mqtt.max_queued:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "outgoing queue full (%d messages unacknowledged): %d dropped so far",
                    self.unacknowledged,
                    self.dropped,
                )
            return None
        info = self.client.publish(topic, encode(envelope), qos=1, retain=retain)
        self._sent += 1
        return info

    def start(self) -> None:
        cfg = self.config.mqtt
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        self.client.loop_start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (a retained ``shutdown`` death), disconnect cleanly and stop the network thread.

        If the goodbye is not acknowledged in time, the connection is dropped without a DISCONNECT, so the
        broker publishes the will: a clean disconnect would cancel it and leave the agent online for ever.
        """
        self._stopping = True
        said_goodbye = False
        try:
            if self._connected:
                death = self.sequencer.make("death", {"state": "offline", "reason": "shutdown"})
                info = self._publish(self.status_topic, death, retain=True)
                if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
                    await asyncio.to_thread(info.wait_for_publish, timeout)
                    said_goodbye = info.is_published()
        except (RuntimeError, ValueError) as exc:
            log.warning("could not say goodbye to the broker: %s", exc)
        finally:
            if said_goodbye:
                self.client.disconnect()
                await asyncio.to_thread(self.client.loop_stop)
            else:
                await asyncio.to_thread(self.client.loop_stop)
                sock = self.client.socket()
                if sock is not None:
                    sock.close()  # no DISCONNECT: the broker publishes the will
