"""Reaching the NATS cluster: the connection's options (servers, login, TLS), NATS made to make its MQTT
streams (they come with the first MQTT connection), and the partitions' consumers made before the first agent
(``hezo-collector cluster nats-setup``, docs/cluster.md).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collector.ingest.consumers import STREAM, Consumers
from collector.ingest.session import SessionSettings

if TYPE_CHECKING:
    from collector.cluster.settings import NatsConfig
    from common.configfile import TlsConfig

log = logging.getLogger(__name__)


def connect_options(config: NatsConfig) -> dict[str, Any]:
    """What ``nats.connect`` needs to reach the nodes ``config`` names: servers, login, TLS."""
    options: dict[str, Any] = {
        "servers": list(config.servers),
        "name": "hezo-collector",
        "connect_timeout": 5,
    }
    if config.user is not None and config.password is not None:
        options |= {"user": config.user, "password": config.password.get_secret_value()}
    if config.tls is not None:
        options["tls"] = tls_context(config.tls)
    elif any(server.startswith("tls:") for server in config.servers):
        options["tls"] = ssl.create_default_context()
    return options


def make_consumers(
    config: NatsConfig,
    prefix: str,
    partitions: int,
    make_streams: Callable[[], None] | None,
    *,
    timeout: float = 60.0,
) -> list[str]:
    """Every partition's consumer made where it has none (``hezo-collector cluster nats-setup``), the
    MQTT streams first if NATS has none yet; the names made. Run before the first agent connects, so NATS
    keeps every message agents publish until a collector reads it, however late collectors start."""

    seen: list[Exception] = []

    async def said_once(exc: Exception) -> None:
        seen.append(exc)  # the last one is what the caller is told

    async def setup() -> list[str]:
        import nats
        from nats.errors import NoServersError

        try:  # a few tries per node (one restarting), then what the last try met
            client = await nats.connect(
                allow_reconnect=False,
                max_reconnect_attempts=3,
                reconnect_time_wait=1,
                error_cb=said_once,
                **connect_options(config),
            )
        except NoServersError as exc:
            raise ConnectionError(str(seen[-1]) if seen else str(exc)) from exc
        try:
            consumers = Consumers(client.jetstream(), config, prefix, partitions)
            given_up = threading.Event()
            waiting = asyncio.get_running_loop().call_later(timeout, given_up.set)
            await consumers.wait_for_stream(given_up, make_streams)
            waiting.cancel()
            if given_up.is_set():
                raise TimeoutError(f"NATS made no {STREAM} stream within {timeout:.0f} s")
            return await consumers.ensure()
        finally:
            await client.close()

    return asyncio.run(setup())


def open_mqtt_once(settings: SessionSettings, timeout: float = 10.0) -> None:
    """Connect to the MQTT listener ``settings`` names and leave (a clean session): NATS makes its MQTT
    streams at the first MQTT connection. A failure is logged; the receiver goes on waiting for the stream."""
    from common.mqttclient import Client, describe

    client = Client(f"{settings.client_id}-streams", clean_session=True)
    client.login(settings.username, settings.password)
    client.use_tls(settings.tls)
    try:
        client.connect(settings.host, settings.port, keepalive=settings.keepalive)
        client.loop_start()
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
    except OSError as exc:
        log.warning(
            "could not reach %s:%s to have NATS make its streams: %s",
            settings.host,
            settings.port,
            describe(exc),
        )
    finally:
        client.close()


def tls_context(tls: TlsConfig) -> ssl.SSLContext:
    """A client context verifying the nodes against ``ca_file`` (or the system CAs); a client certificate."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context
