"""The MQTT connection commands leave on, apart from the ingest session."""

from __future__ import annotations

from collector.config import CollectorConfig
from common.mqttclient import Client


class Publisher:
    """A small MQTT connection of its own for commands (clean session, QoS 1), apart from the ingest one."""

    def __init__(self, config: CollectorConfig) -> None:
        cfg = config.mqtt
        self._cfg = cfg
        self._client = Client(f"{cfg.client_id}-cmd", clean_session=True)
        self._client.login(cfg.username, cfg.password.get_secret_value() if cfg.password else None)
        self._client.use_tls(cfg.tls)
        self._client.reconnect_delay_set(1, 30)
        self._client.on_connect = lambda client, *_: client.connected()

    def start(self) -> None:
        self._client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self._client.publish(topic, payload, qos=1, retain=False)

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
