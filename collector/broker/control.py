"""Mosquitto's dynamic-security control topic, spoken with the collector's own login.

A request is ``{"commands": [{"command": ..., "correlationData": ...}, ...]}`` published on
``$CONTROL/dynamic-security/v1``; the plugin answers on ``.../response`` with one response per command, each
``{"command", "correlationData", "error"?, "data"?}``. Passwords travel only inside this TLS connection to the
broker, which keeps their salted hash; the broker's log masks them (``password=*****``).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
from types import TracebackType
from typing import Any

from collector.broker.acl import CONTROL_TOPIC, RESPONSE_TOPIC
from collector.config import MqttConfig
from collector.errors import UnavailableError
from common.mqttclient import Client, describe

log = logging.getLogger(__name__)


class BrokerUnavailableError(UnavailableError):
    """The broker could not be reached, refused the collector's login, or did not answer in time."""


class BrokerControl:
    """One short connection to the broker's control topic; use as a context manager."""

    def __init__(self, mqtt: MqttConfig, timeout: float) -> None:
        self._mqtt = mqtt
        self._timeout = timeout
        self._where = f"{mqtt.host}:{mqtt.port}"
        # A client id of its own each time: two engineers enrolling at once must not throw each other out.
        self._client = Client(f"{mqtt.client_id}-control-{secrets.token_hex(4)}", clean_session=True)
        self._client.login(mqtt.username, mqtt.password.get_secret_value() if mqtt.password else None)
        self._client.use_tls(mqtt.tls)
        self._client.on_connect = self._connected
        self._client.on_subscribe = self._subscribed
        self._client.on_message = self._message
        self._ready = threading.Event()
        self._refused: str | None = None
        self._answers: dict[str, dict[str, Any]] = {}
        self._answered = threading.Condition()
        self._requests = 0

    def __enter__(self) -> BrokerControl:
        try:
            self._client.connect(self._mqtt.host, self._mqtt.port, keepalive=self._mqtt.keepalive)
        except OSError as exc:
            raise BrokerUnavailableError(f"cannot reach the broker {self._where}: {describe(exc)}") from None
        self._client.loop_start()
        if not self._ready.wait(self._timeout) or self._refused is not None:
            self.close()
            why = self._refused or f"no answer within {self._timeout:g} s"
            raise BrokerUnavailableError(
                f"the broker {self._where} refused the collector's control session: {why}"
            )
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _value: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` in one request; their responses in the same order (``error`` set if refused)."""
        self._requests += 1
        tagged = [
            {**command, "correlationData": f"{self._requests}-{n}"} for n, command in enumerate(commands)
        ]
        wanted = [command["correlationData"] for command in tagged]
        info = self._client.publish(CONTROL_TOPIC, json.dumps({"commands": tagged}), qos=1)
        with self._answered:
            if not self._answered.wait_for(
                lambda: all(key in self._answers for key in wanted), self._timeout
            ):
                raise BrokerUnavailableError(
                    f"the broker {self._where} did not answer within {self._timeout:g} s "
                    "(is its dynamic-security plugin loaded, and does the collector's login hold the "
                    "hezo-broker-admin role?)"
                )
            answers = [self._answers.pop(key) for key in wanted]
        info.wait_for_publish(self._timeout)
        for command, answer in zip(commands, answers, strict=True):
            if "error" in answer:
                log.debug("broker control %s: %s", command["command"], answer["error"])
        return answers

    # -- paho's thread ----------------------------------------------------------------------------

    def _connected(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._ready.set()
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)

    def _subscribed(self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _props: Any) -> None:
        if any(code.is_failure for code in reasons):
            self._refused = "the login may not read the control topic's answers (it needs hezo-broker-admin)"
        self._ready.set()

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            responses = json.loads(message.payload)["responses"]
        except (ValueError, KeyError, TypeError):
            log.warning("broker control: an answer that is not the plugin's; ignored")
            return
        with self._answered:
            for response in responses if isinstance(responses, list) else []:
                if isinstance(response, dict) and isinstance(response.get("correlationData"), str):
                    self._answers[response["correlationData"]] = response
            self._answered.notify_all()
