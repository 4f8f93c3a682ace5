"""The MQTT session on a thread of the collector (``mqtt.receiver: thread``); the default runs it in a process
of its own (``receiver``). Either way every message goes to the writer's queue in the order received."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

import paho.mqtt.client as paho

from collector.config import MqttConfig
from collector.ingest.session import Session, SessionSettings
from collector.ingest.writer import Inbox, Message
from collector.store.database import utcnow


class Subscriber(Session):
    """The session on a thread of the collector (``receiver: thread``): messages go to the writer in order."""

    def __init__(
        self,
        config: MqttConfig,
        writer: Inbox,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(SessionSettings.of(config))
        self._writer = writer
        self._now = now

    def _deliver(self, message: paho.MQTTMessage, connection: int) -> None:
        ack = None
        if message.qos > 0:
            ack = functools.partial(self.ack, message.mid, message.qos, connection)  # cheaper than a closure
        # put may wait for room in the queue; the writer never needs this thread to ack (see the module doc).
        self._writer.put(
            Message(
                message.topic,
                bytes(message.payload),
                self._now(),
                ack,
                retained=bool(message.retain),
                redelivered=bool(message.dup),
            )
        )
