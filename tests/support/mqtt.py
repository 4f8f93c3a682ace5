"""A test-side MQTT listener: records every message and waits for the one a test expects."""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def doc(self) -> Any:
        return json.loads(self.payload)


class Listener:
    def __init__(self, host: str, port: int, topic: str = "#") -> None:
        self.messages: list[Received] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("listener did not subscribe")

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._cond:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain)))
            self._cond.notify_all()

    def wait_for(self, match: Callable[[Received], bool], timeout: float = 20.0) -> Received:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = "\n".join(f"  {m.topic} {m.payload[:200]!r}" for m in self.messages[-10:])
                    raise TimeoutError(f"no matching message within {timeout} s; last seen:\n{seen}")
                self._cond.wait(left)

    def close(self) -> None:
        close_client(self.client)


def close_client(client: mqtt.Client) -> None:
    """Disconnect and stop a paho client, and close the socket pair its loop thread leaves open.

    paho closes that pair only when the client is garbage-collected, which pytest (warnings as errors)
    reports as an unclosed socket when the client sits in a reference cycle.
    """
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()
