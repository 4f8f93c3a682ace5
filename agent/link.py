"""The agent's MQTT link: birth and death on the status topic, QoS 1 publishing through a durable spool.

paho-mqtt runs its network loop in its own thread; everything that builds messages runs on the asyncio loop,
and paho's callbacks hop over with ``call_soon_threadsafe``. The death message is registered as the MQTT
will before every connection attempt, so the broker announces the agent offline if it vanishes.

Every message goes to the spool (``agent/spool.py``) first. The spool is committed every
``spool.commit_interval`` seconds; then committed messages are handed to paho in ``(boot, seq)`` order, at
most ``mqtt.max_inflight`` unacknowledged at once, and each is deleted from the spool when the broker
acknowledges it (``on_publish``). paho keeps what it was handed across reconnects and sends it again itself;
after a restart the spool sends whatever is left, with its original bytes.
"""

import asyncio
import contextlib
import logging
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from agent import __version__
from agent.config import AgentConfig
from agent.spool import Spool
from common.mqttclient import Client
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

    def reserve(self, count: int) -> int:
        """Take ``count`` consecutive seqs at once; returns the first."""
        with self._lock:
            first = self._seq + 1
            self._seq += count
        return first

    def make(self, kind: str, body: dict[str, Any], seq: int | None = None) -> Envelope:
        """An envelope with the next seq, or with ``seq`` taken earlier by ``reserve``."""
        if seq is None:
            seq = self.reserve(1)
        return Envelope(self.site, self.agent, self.boot, seq, format_ts(datetime.now(UTC)), kind, body)


class Link:
    """Publishes the agent's messages; calls ``on_connected`` on the asyncio loop after each (re)connect."""

    def __init__(
        self,
        config: AgentConfig,
        loop: asyncio.AbstractEventLoop,
        on_connected: Callable[[], None],
        spool: Spool | None = None,
    ) -> None:
        self.config = config
        self.topics = Topics(config.mqtt.prefix)
        self.sequencer = Sequencer(config.site, config.agent)
        self._loop = loop
        self._on_connected = on_connected
        if spool is None:
            path = config.spool.path or Path(f"hezo-agent-{config.site}-{config.agent}.spool.db")
            spool = Spool(path, config.spool.max_bytes)
        self.spool = spool
        if spool.count:
            log.info("spool %s holds %d unacknowledged messages: sending them first", spool.path, spool.count)
        # The will and the birth of the next connection, reserved together (seq w and w + 1) at the first
        # attempt and kept until one attempt succeeds. So a connection leaves at most one hole in seq (its
        # will, named by its birth's will_seq), and the birth is the very next message after it: messages made
        # during an outage come after the birth, which is published first when the link is back.
        self._reserved: tuple[Envelope, int] | None = None
        self._will_seq = 0
        self._connected = False  # paho's thread: the connection is up
        self._ready = False  # the loop: the birth of this connection is spooled; messages may go
        self._stopping = False
        # Loop-side publishing state: mid -> spool id of the messages handed to paho, and the (boot, seq) of
        # the last message handed (everything up to it is with paho or acknowledged).
        self._inflight: dict[int, int] = {}
        self._handed: tuple[str, int] | None = None
        self._acked: list[int] = []
        self._uncommitted: list[tuple[str, int, str]] = []  # for the debug log only
        self._flush_handle: asyncio.TimerHandle | None = None
        self._waiters: dict[int, asyncio.Future[None]] = {}
        #: Called on the asyncio loop with each payload on the agent's cmd topic (agent/commands.py).
        self.on_command: Callable[[bytes], None] | None = None
        self.client = self._make_client()

    def _make_client(self) -> Client:
        cfg = self.config.mqtt
        client = Client(self.config.client_id, clean_session=True)
        client.login(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        client.use_tls(cfg.tls)
        client.max_inflight_messages_set(cfg.max_inflight)
        # The spool is the queue: paho only ever holds the messages in flight.
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_pre_connect = self._register_will
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_acknowledged
        client.on_message = self._handle_message
        client.on_subscribe = self._handle_subscribed
        return client

    @property
    def status_topic(self) -> str:
        return self.topics.status(self.config.site, self.config.agent)

    @property
    def dropped(self) -> int:
        """Telemetry messages the spool evicted since it was created, across restarts."""
        return self.spool.counter("evicted_total")

    @property
    def unacknowledged(self) -> int:
        return self.spool.count

    # -- paho's thread ----------------------------------------------------------------------------

    def _register_will(self, client: mqtt.Client, _userdata: object) -> None:
        if self._reserved is None:
            first = self.sequencer.reserve(2)
            death = self.sequencer.make("death", {"state": "offline", "reason": "connection-lost"}, seq=first)
            self._reserved = (death, first + 1)
        death, _birth_seq = self._reserved
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
        reserved = self._reserved
        self._reserved = None  # the next connection reserves its own will and birth
        will_seq, birth_seq = (reserved[0].seq, reserved[1]) if reserved else (self._will_seq, None)
        self._loop.call_soon_threadsafe(self._after_connect, will_seq, birth_seq)

    def _handle_subscribed(self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(code.is_failure for code in reasons):
            # The broker lets an agent read only its own cmd topic, under the prefix it was enrolled with.
            log.warning(
                "broker refused the subscription to %s: no commands will arrive",
                self.topics.cmd(self.config.site, self.config.agent),
            )

    def _handle_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if self._connected and not self._stopping:
            log.warning("lost the broker (%s); reconnecting with backoff", reason)
        self._connected = False
        with contextlib.suppress(RuntimeError):  # the loop is closed: the agent is exiting
            self._loop.call_soon_threadsafe(self._after_disconnect)

    def _handle_acknowledged(self, _client: Any, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._acknowledged, mid)

    # -- the asyncio loop -------------------------------------------------------------------------

    def _after_connect(self, will_seq: int, birth_seq: int | None) -> None:
        self.publish_birth(will_seq, birth_seq)
        self._ready = True
        self._on_connected()
        self._flush()

    def _after_disconnect(self) -> None:
        self._ready = False

    def _acknowledged(self, mid: int) -> None:
        spool_id = self._inflight.pop(mid, None)
        if spool_id is None:
            return
        self._acked.append(spool_id)
        waiter = self._waiters.pop(spool_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._schedule_flush()

    def birth_body(self, will_seq: int) -> dict[str, Any]:
        return {
            "state": "online",
            "version": __version__,
            "hostname": socket.gethostname(),
            "will_seq": will_seq,
            # Telemetry the spool evicted since the previous birth (possibly of an earlier boot); the reset
            # is committed with this birth, so no eviction is reported twice or never.
            "dropped": self.spool.take_evicted(),
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

    def publish_birth(self, will_seq: int, birth_seq: int | None = None) -> None:
        birth = self.sequencer.make("birth", self.birth_body(will_seq), seq=birth_seq)
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

    def _publish(self, topic: str, envelope: Envelope, retain: bool = False) -> int:
        """Spool one QoS 1 message; it goes to the broker after the next commit. Returns its spool id."""
        spool_id = self.spool.add(
            envelope.boot,
            envelope.seq,
            envelope.kind,
            topic,
            encode(envelope),
            retain=retain,
            handed=self._handed,
        )
        if log.isEnabledFor(logging.DEBUG):
            self._uncommitted.append((envelope.boot, envelope.seq, envelope.kind))
        self._schedule_flush()
        return spool_id

    def _schedule_flush(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = self._loop.call_later(self.config.spool.commit_interval, self._flush)

    def _flush(self) -> None:
        """Commit what was spooled and acknowledged since the last commit, then publish what may go."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if self._acked:
            self.spool.remove(self._acked)
            self._acked = []
        self.spool.commit()
        for boot, seq, kind in self._uncommitted:
            log.debug("spooled %s %d %s", boot, seq, kind)  # committed: it will reach the broker
        self._uncommitted = []
        self._pump()

    def _pump(self) -> None:
        """Hand committed messages to paho in (boot, seq) order while the in-flight window has room."""
        window = self.config.mqtt.max_inflight
        while self._ready and self._connected and len(self._inflight) < window:
            batch = self.spool.next_after(self._handed, window - len(self._inflight))
            if not batch:
                return
            for message in batch:
                # A message of an earlier boot goes without retain: the broker's retained copy must not go
                # back to an older state; the collector orders by (boot, seq) and ignores it if stale.
                retain = message.retain and message.boot == self.sequencer.boot
                info = self.client.publish(message.topic, message.payload, qos=1, retain=retain)
                if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                    log.warning("paho refused a message (rc %s); trying again after the next commit", info.rc)
                    self._schedule_flush()
                    return
                # NO_CONN: the link dropped just now; paho keeps the message and sends it on reconnect.
                self._inflight[info.mid] = message.id
                self._handed = (message.boot, message.seq)

    def start(self) -> None:
        cfg = self.config.mqtt
        self.client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive)
        self.client.loop_start()

    async def stop(self, timeout: float = 5.0) -> None:
        """Say goodbye (a retained ``shutdown`` death), disconnect cleanly and stop the network thread.

        If the goodbye is not acknowledged in time (the backlog before it is long, or the broker is gone),
        the connection is dropped without a DISCONNECT, so the broker publishes the will: a clean disconnect
        would cancel it and leave the agent online for ever. An unacknowledged goodbye stays in the spool.
        """
        self._stopping = True
        said_goodbye = False
        try:
            if self._connected:
                death = self.sequencer.make("death", {"state": "offline", "reason": "shutdown"})
                spool_id = self._publish(self.status_topic, death, retain=True)
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._waiters[spool_id] = waiter
                self._flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter, timeout)
                said_goodbye = waiter.done()
        except (RuntimeError, ValueError, sqlite3.Error) as exc:
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
            self._close_spool()

    def _close_spool(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        try:
            if self._acked:
                self.spool.remove(self._acked)
                self._acked = []
            self.spool.close()
        except sqlite3.Error as exc:
            log.warning("could not close the spool %s cleanly: %s", self.spool.path, exc)
