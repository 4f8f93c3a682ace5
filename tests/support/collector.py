"""Test helpers for the collector: a migrated SQLite store, an agent that writes valid messages, and a
collector running in the test (``running_collector``) or as a process of its own (``serve``)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from collector.config import CollectorConfig
from collector.errors import NotFoundError
from collector.ingest.pipeline import Ingest
from collector.metrics import Metrics
from collector.service import CollectorService
from collector.store.database import make_engine, migrate
from protocol import Envelope, Topics, encode, format_ts
from tests.support.mosquitto import ROOT, Mosquitto

T0 = datetime(2026, 11, 24, 21, 0, 0, tzinfo=UTC)

RALLY_BAR = {
    "id": "rally-bar-1",
    "model": "rally-bar",
    "serial": "2034FH1002R2",
    "name": "Rally Bar",
    "room": "Room 101",
    "contract": "HZ-2026-0042",
}

FAILED_CHECK = {
    "driver": "https",
    "target": "https://192.0.2.10/",
    "ok": False,
    "detail": "connection refused",
    "ts": "2026-11-24T21:00:00.000Z",
    "duration_ms": 0.8,
}


def serve(config: Path, workdir: Path) -> subprocess.Popen[bytes]:
    """``python -m collector --config CONFIG serve`` in ``workdir``, its output in ``collector.log`` there."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (workdir / "collector.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "collector", "--config", str(config), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )


def run_cli(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m collector ARGS`` in ``cwd``, its output captured; ``HEZO_COLLECTOR_CONFIG`` of the calling
    environment left out (a test says which config it means), ``env`` added."""
    environ = {key: value for key, value in os.environ.items() if key != "HEZO_COLLECTOR_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "collector", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
        check=False,
    )


def get(port: int, path: str, token: str | None = None) -> str:
    """The body of a GET on the collector's web port (with an API token, for the API)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return str(answer.read().decode())


@contextmanager
def running_collector(broker: Mosquitto, tmp_path: Path, client_id: str) -> Iterator[CollectorService]:
    """A collector in this process on ``broker``, storing into SQLite in ``tmp_path``, subscribed."""
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"host": broker.host, "port": broker.port, "client_id": client_id},
            "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
        }
    )
    service = CollectorService(config)
    service.start()
    try:
        assert service.subscriber.wait_subscribed(10)
        yield service
    finally:
        service.stop()


def migrated_engine(tmp_path: Path) -> Engine:
    """A fresh SQLite database in ``tmp_path`` at the latest schema."""
    engine = make_engine(f"sqlite:///{tmp_path / 'collector.db'}")
    migrate(engine)
    return engine


#: When fake agents start: a boot id is the agent's start time in ms, 12 hex digits, then 4 more.
BOOT_EPOCH_MS = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp() * 1000)


def boot_id(number: int) -> str:
    """The boot id of a fake agent's ``number``-th start: later starts sort after earlier ones."""
    return f"{BOOT_EPOCH_MS + number:012x}0000"


@dataclass
class FakeAgent:
    """Builds the (topic, payload) pairs one agent would publish, with its seq counting up.

    Like the real agent, ``birth()`` first registers a will (a death that takes the next seq), then publishes
    the birth naming it in ``will_seq``; ``will()`` is that registered death, as the broker would publish it.
    """

    site: str = "hq"
    agent: str = "room-101-pc"
    boot: str = field(default_factory=lambda: boot_id(1))
    prefix: str = "hezo/v1"
    seq: int = 0
    devices: list[dict[str, Any]] = field(default_factory=lambda: [dict(RALLY_BAR)])
    registered_will: tuple[str, bytes] | None = None

    def restart(self) -> None:
        """A new start of the agent: a boot id that sorts after the previous one, seq from scratch."""
        self.boot = boot_id(int(self.boot[:12], 16) - BOOT_EPOCH_MS + 1)
        self.seq = 0
        self.registered_will = None

    def will(self) -> tuple[str, bytes]:
        """The death registered as the MQTT will by the latest ``birth()``."""
        assert self.registered_will is not None, "no birth yet, so no will registered"
        return self.registered_will

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    def _payload(self, kind: str, body: dict[str, Any], at: datetime) -> bytes:
        self.seq += 1
        envelope = Envelope(self.site, self.agent, self.boot, self.seq, format_ts(at), kind, body)
        return encode(envelope)

    def birth(self, at: datetime = T0) -> tuple[str, bytes]:
        self.registered_will = self.death(at=at)
        body = {
            "state": "online",
            "version": "0.1.0",
            "hostname": "room-101-pc",
            "will_seq": self.seq,
            "devices": self.devices,
        }
        return self.topics.status(self.site, self.agent), self._payload("birth", body, at)

    def death(self, at: datetime = T0, reason: str = "connection-lost") -> tuple[str, bytes]:
        body = {"state": "offline", "reason": reason}
        return self.topics.status(self.site, self.agent), self._payload("death", body, at)

    def state(
        self,
        state: str,
        at: datetime = T0,
        device: str = "rally-bar-1",
        since: datetime | None = None,
        checks: list[dict[str, Any]] | None = None,
    ) -> tuple[str, bytes]:
        if checks is None:
            checks = [FAILED_CHECK] if state == "down" else [{**FAILED_CHECK, "ok": True, "detail": "200 OK"}]
        body = {
            "device": device,
            "state": state,
            "since": format_ts(since or at),
            "reason": "https https://192.0.2.10/: connection refused"
            if state == "down"
            else "all checks pass",
            "checks": checks,
        }
        return self.topics.state(self.site, self.agent, device), self._payload("state", body, at)

    def event(self, at: datetime = T0, device: str = "rally-bar-1") -> tuple[str, bytes]:
        body = {
            "type": "state-changed",
            "device": device,
            "from": "up",
            "to": "down",
            "reason": "connection refused",
            "checks": [FAILED_CHECK],
        }
        return self.topics.event(self.site, self.agent), self._payload("event", body, at)

    def telemetry(self, at: datetime = T0, device: str = "rally-bar-1", count: int = 2) -> tuple[str, bytes]:
        samples = [
            {"device": device, "metric": "https.duration_ms", "value": 10.0 + i, "ts": format_ts(at)}
            for i in range(count)
        ]
        return self.topics.telemetry(self.site, self.agent), self._payload(
            "telemetry", {"samples": samples}, at
        )


class Clock:
    """An injectable clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> datetime:
        self.moment += timedelta(seconds=seconds)
        return self.moment


def user_token(engine: Engine, name: str, role: str = "admin", customer: str | None = None) -> str:
    """A new API token of user ``name`` (made, without a password, if the store has none so named)."""
    from collector.people import tokens, users

    with engine.begin() as conn:
        try:
            users.find(conn, name)
        except NotFoundError:
            users.add(conn, name, role, customer=customer, now=T0, by="test")
        return tokens.issue(conn, name, now=T0, by="test")[1]


def add_user(store_url: str, name: str, role: str, password: str, customer: str | None = None) -> None:
    """A user who logs in with ``password``, in the store at ``store_url`` (migrated first)."""
    from collector.people import users

    engine = make_engine(store_url)
    try:
        migrate(engine)
        with engine.begin() as conn:
            users.add(conn, name, role, password=password, customer=customer, now=T0, by="test")
    finally:
        engine.dispose()


def admin_token(store_url: str, name: str = "test-admin") -> str:
    """An admin's API token in the store at ``store_url`` (migrated first), for a collector process."""
    engine = make_engine(store_url)
    try:
        migrate(engine)
        return user_token(engine, name)
    finally:
        engine.dispose()


class AppClient:
    """Requests against an ASGI app in-process, through httpx's ASGI transport, as a user with an API token:
    an admin of its own by default, ``role=None`` for nobody, or the user of ``token``.

    (Starlette's TestClient now warns about httpx, and warnings are errors here.)
    """

    def __init__(
        self,
        app: Any,
        *,
        role: str | None = "admin",
        customer: str | None = None,
        name: str | None = None,
        token: str | None = None,
    ) -> None:
        self._app = app
        self.token = token
        if token is None and role is not None:
            who = name or f"test-{role}" + (f"-{customer.lower().replace(' ', '-')}" if customer else "")
            self.token = user_token(app.state.wiring.engine, who, role, customer)

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        sent.update(headers or {})

        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                return await client.request(method, path, json=json, headers=sent, **options)

        return asyncio.run(fetch())


def fill_rooms(engine: Engine, clock: Clock, agents: int, per_agent: int) -> None:
    """``agents`` agents of ``per_agent`` Rally Bars each, born and reported through ingest, one device in
    five ``down`` (each a Critical ticket once the confirm window passes); ``clock`` moves as they report."""
    ingest = Ingest(engine, Metrics(), "hezo/v1")
    for n in range(agents):
        items = [{**RALLY_BAR, "id": f"d{i}", "serial": f"S{n}-{i}"} for i in range(per_agent)]
        agent = FakeAgent(agent=f"pc-{n}", devices=items)
        ingest.handle(*agent.birth(), received_at=clock())
        for i in range(per_agent):
            state = "down" if i % 5 == 0 else "up"
            ingest.handle(*agent.state(state, at=clock(), device=f"d{i}"), received_at=clock())
