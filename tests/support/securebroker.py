"""A Mosquitto running config/mosquitto.production.conf, moved to loopback for one test.

Only what ties the shipped file to one machine changes: the listener (a free loopback port), the certificate
and key (from a test CA made here with ``cryptography``), the dynamic-security file (made by the same code as
``hezo-collector broker init``) and the persistence folder (the test's). Each replaced line must be found
exactly once, so a change to the shipped file cannot slip past these tests. The login, the plugin, the access
rules and every limit are the shipped ones.
"""

import getpass
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from collector.broker.acl import plugin_config
from protocol import Topics
from protocol.enrolment import Enrolment, decode_enrolment
from simulator.pki import CertificateAuthority
from tests.support.mosquitto import ROOT, Mosquitto, free_port
from tests.support.mqtt import close_client

PRODUCTION = ROOT / "config" / "mosquitto.production.conf"
COLLECTOR_LOGIN = "hezo-collector"


@dataclass
class SecureBroker(Mosquitto):
    """The production broker of a test; ``mutual`` also asks every client for a certificate of ``pki``."""

    pki: CertificateAuthority | None = None
    password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    mutual: bool = False

    @property
    def ca_file(self) -> Path:
        assert self.pki is not None
        return self.pki.cert_file

    @property
    def dynsec_file(self) -> Path:
        return self.workdir / "dynamic-security.json"

    def config_text(self) -> str:
        lines = {
            "listener 8883": f"listener {self.port} {self.host}",
            "certfile /etc/mosquitto/certs/broker.pem": f"certfile {self.workdir / 'broker.pem'}",
            "keyfile /etc/mosquitto/certs/broker-key.pem": f"keyfile {self.workdir / 'broker-key.pem'}",
            "plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json": (
                f"plugin_opt_config_file {self.dynsec_file}"
            ),
            "persistence_location /var/lib/mosquitto/": f"persistence_location {self.workdir}/",
        }
        if self.mutual:
            lines["#cafile /etc/mosquitto/certs/clients-ca.pem"] = f"cafile {self.ca_file}"
            lines["#require_certificate true"] = "require_certificate true"
        shipped = PRODUCTION.read_text().splitlines()
        for line in lines:
            assert shipped.count(line) == 1, f"{PRODUCTION.name} should hold the line {line!r} once"
        # Started as root, Mosquitto would drop to the 'mosquitto' user and could not write workdir.
        return "\n".join(lines.get(line, line) for line in shipped) + f"\nuser {getpass.getuser()}\n"

    def client_certificate(self, name: str) -> tuple[Path, Path]:
        """A client certificate of the test CA (for mutual TLS) and its key."""
        assert self.pki is not None
        cert, key = self.workdir / f"{name}.pem", self.workdir / f"{name}-key.pem"
        self.pki.issue(cert, key, common_name=name, server=False)
        return cert, key

    def collector_mqtt(self, client_id: str) -> dict[str, Any]:
        """The ``mqtt`` section of a collector that logs in to this broker as itself."""
        tls: dict[str, str] = {"ca_file": str(self.ca_file)}
        if self.mutual:
            cert, key = self.client_certificate(f"collector-{secrets.token_hex(4)}")
            tls.update(cert_file=str(cert), key_file=str(key))
        return {
            "host": self.host,
            "port": self.port,
            "client_id": client_id,
            "username": COLLECTOR_LOGIN,
            "password": self.password,
            "tls": tls,
        }

    def enrolment(self) -> dict[str, Any]:
        """The ``enrolment`` section of that collector: agents reach this broker where the collector does."""
        return {"broker": "dynamic-security", "agent_host": self.host, "agent_port": self.port}


def start_secure_broker(
    folder: Path, *, mutual: bool = False, dynsec: Path | None = None, password: str | None = None
) -> SecureBroker:
    """Make the CA, the broker's certificate and its first dynamic-security file in ``folder`` (or take
    ``dynsec``, as ``hezo-collector broker init`` wrote it); start it."""
    folder.mkdir(parents=True, exist_ok=True)
    pki = CertificateAuthority(folder / "ca.pem", "hezo test broker CA")
    pki.issue(
        folder / "broker.pem",
        folder / "broker-key.pem",
        common_name="broker",
        server=True,
        ip_addresses=["127.0.0.1"],
    )
    broker = SecureBroker("127.0.0.1", free_port(), folder, pki=pki, mutual=mutual)
    if password is not None:
        broker.password = password
    if dynsec is not None:
        os.replace(dynsec, broker.dynsec_file)
    else:
        document = plugin_config(Topics(), COLLECTOR_LOGIN, broker.password)
        fd = os.open(broker.dynsec_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)
    broker.start()
    return broker


class BrokerClient:
    """A paho client over TLS to a ``SecureBroker``, with or without a login, that records what the broker
    answered: the CONNACK, each SUBACK, the messages it was given, and a lost connection."""

    def __init__(
        self,
        broker: SecureBroker,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        certificate: tuple[Path, Path] | None = None,
        tls: bool = True,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if tls:
            cert, key = certificate or (None, None)
            self.client.tls_set(
                ca_certs=str(broker.ca_file),
                certfile=str(cert) if cert else None,
                keyfile=str(key) if key else None,
            )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.reason: Any = None
        self.messages: list[tuple[str, bytes]] = []
        self.lost = threading.Event()
        self._answered = threading.Event()
        self._subacks: dict[int, list[Any]] = {}
        self._changed = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *_: (self.lost.set(), self._answered.set())
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(60, 60)  # a test reconnects by hand, never behind its back
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        if not self._answered.wait(10):
            raise TimeoutError("the broker neither answered nor closed the connection within 10 s")

    @classmethod
    def of(cls, broker: SecureBroker, document: Enrolment, **options: Any) -> "BrokerClient":
        """A client logged in with an enrolment document's login and client id."""
        return cls(
            broker, document.client_id, username=document.username, password=document.password, **options
        )

    @property
    def accepted(self) -> bool:
        return self.reason is not None and not self.reason.is_failure and not self.lost.is_set()

    def _on_connect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self.reason = reason
        self._answered.set()

    def _on_subscribe(self, _client: Any, _userdata: Any, mid: int, reasons: Any, _props: Any) -> None:
        with self._changed:
            self._subacks[mid] = list(reasons)
            self._changed.notify_all()

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        with self._changed:
            self.messages.append((message.topic, message.payload))
            self._changed.notify_all()

    def subscribe(self, topic: str) -> bool:
        """Whether the broker granted the subscription (its SUBACK)."""
        _result, mid = self.client.subscribe(topic, qos=1)
        with self._changed:
            assert self._changed.wait_for(lambda: mid in self._subacks, 10), f"no SUBACK for {topic}"
            return not any(code.is_failure for code in self._subacks[mid])

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the PUBACK (the broker answers it for a refused topic too)."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def wait_message(self, topic: str, timeout: float = 20.0) -> bytes:
        with self._changed:
            found = self._changed.wait_for(lambda: any(t == topic for t, _ in self.messages), timeout)
            assert found, f"nothing arrived on {topic} within {timeout} s; got {self.messages}"
            return next(payload for t, payload in self.messages if t == topic)

    def close(self) -> None:
        close_client(self.client)


def collector_config(
    folder: Path, broker: SecureBroker, *, web_port: int | None = None, **sections: Any
) -> Path:
    """A collector config on ``broker`` (its own login, enrolment through dynamic security), SQLite in
    ``folder``; ``sections`` are added as they are (``diagnostics={...}``)."""
    config: dict[str, Any] = {
        "mqtt": broker.collector_mqtt(f"collector-{secrets.token_hex(4)}"),
        "enrolment": broker.enrolment(),
        "store": {"url": f"sqlite:///{folder / 'collector.db'}"},
        "incidents": {"confirm_window": 1, "evaluate_every": 0.25},
    }
    if web_port is not None:
        config["web"] = {"host": "127.0.0.1", "port": web_port}
    config.update(sections)
    path = folder / "collector.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def hezo(
    program: str, folder: Path, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``hezo-collector`` (``program="collector"``) or ``hezo-agent`` (``"agent"``) as a user would."""
    return subprocess.run(
        [sys.executable, "-m", program, *args],
        input=stdin,
        capture_output=True,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )


def enrol(folder: Path, config: Path, agent: str, action: str = "enrol") -> Enrolment:
    """``hezo-collector agents enrol|rotate SITE/AGENT --out FILE``; the document it wrote."""
    out = folder / f"{agent.replace('/', '-')}-{secrets.token_hex(3)}.json"
    done = hezo("collector", folder, "--config", str(config), "agents", action, agent, "--out", str(out))
    assert done.returncode == 0, done.stderr.decode()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    return decode_enrolment(out.read_bytes())
