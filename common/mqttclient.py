"""The paho-mqtt 2 client as agent and collector both set it up: MQTT 3.1.1, login, TLS, and a clear log line
when the broker cannot be reached.

paho retries a failed connection by itself but keeps the reason to itself; this client remembers it, so the
log says once per outage *why* (refused, TLS verification failed, no route), not only that it failed.
"""

import logging
import ssl
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from common.configfile import TlsConfig

log = logging.getLogger(__name__)


class Client(mqtt.Client):
    def __init__(self, client_id: str, *, clean_session: bool, manual_ack: bool = False) -> None:
        super().__init__(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=mqtt.MQTTv311,
            manual_ack=manual_ack,
        )
        self.last_error: OSError | None = None
        self._failing = False
        self.on_connect_fail = self._connect_failed

    def reconnect(self) -> MQTTErrorCode:
        try:
            return super().reconnect()
        except OSError as exc:
            self.last_error = exc
            raise

    def _connect_failed(self, _client: Any, _userdata: Any) -> None:
        if not self._failing:
            log.warning(
                "cannot reach the broker %s:%s: %s; retrying with backoff",
                self.host,
                self.port,
                describe(self.last_error),
            )
        self._failing = True

    def close(self) -> None:
        """Disconnect, end the loop thread, and close the socket pair paho keeps to wake that thread (paho
        closes it only when the client is garbage-collected, which may be never while callbacks hold it)."""
        self.disconnect()
        self.loop_stop()
        self._reset_sockets()

    def connected(self) -> None:
        """Call from ``on_connect``: the next failure is a new outage and is logged again."""
        self._failing = False

    def login(self, username: str | None, password: str | None) -> None:
        if username is not None:
            self.username_pw_set(username, password)

    def use_tls(self, tls: TlsConfig | None) -> None:
        """TLS to the broker, verified against ``ca_file`` (or the system CAs), with a client certificate."""
        if tls is None:
            return
        self.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )


def describe(error: OSError | None) -> str:
    if error is None:
        return "no answer"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS failed: {error.reason or error}"
    return error.strerror or str(error)
