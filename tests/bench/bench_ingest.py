"""How fast the collector drains a queued stream, against ``mosquitto_sub`` and a bare paho subscriber.

    python -m tests.bench.bench_ingest [--messages 200000] [--agents 20] [--samples 5] [--no-postgres]

A Mosquitto of its own (config/mosquitto.conf: persistence, max_queued_messages 1,000,000) on a free loopback
port; one persistent session per consumer is created first, then the stream (valid telemetry envelopes) is
published once and queued for every session while its subscriber is away. Each consumer then drains its
queue: ``mosquitto_sub -c -q 1 -C N``, a bare paho subscriber (QoS 1, persistent session, auto-ack), and the
collector (store, batches, manual acks after commit) into SQLite and into PostgreSQL (a schema of its own on
127.0.0.1:5432). Printed: msg/s, samples/s, and each one's ratio to the bare paho drain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, text

from collector.config import CollectorConfig, MqttConfig, StoreConfig
from collector.service import CollectorService
from collector.store import make_engine, migrate
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt import close_client
from tests.support.stream import PREFIX, persist_session, publish_all, telemetry_stream

POSTGRES = os.environ.get("HEZO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TIMEOUT = 600.0


def drain_mosquitto_sub(broker: Mosquitto, client_id: str, count: int) -> float:
    binary = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    argv = [binary, "-h", broker.host, "-p", str(broker.port), "-q", "1", "-c", "-i", client_id]
    start = time.monotonic()
    subprocess.run(
        [*argv, "-t", f"{PREFIX}/#", "-C", str(count)], stdout=subprocess.DEVNULL, check=True, timeout=TIMEOUT
    )
    return time.monotonic() - start


def drain_paho(broker: Mosquitto, client_id: str, count: int) -> float:
    done = threading.Event()
    received = [0]

    def on_message(*_: object) -> None:
        received[0] += 1
        if received[0] >= count:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False, protocol=mqtt.MQTTv311
    )
    client.on_message = on_message
    start = time.monotonic()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        if not done.wait(TIMEOUT):
            raise TimeoutError(f"paho drained {received[0]} of {count}")
        return time.monotonic() - start
    finally:
        close_client(client)


def drain_collector(broker: Mosquitto, client_id: str, count: int, url: str, **engine: object) -> float:
    store = make_engine(url, **engine)  # type: ignore[arg-type]
    migrate(store)
    config = CollectorConfig(
        mqtt=MqttConfig(host=broker.host, port=broker.port, client_id=client_id),
        store=StoreConfig(url=url),
    )
    service = CollectorService(config, engine=store)
    ingested = service.metrics.ingested.labels(kind="telemetry")
    start = time.monotonic()
    service.start()
    try:
        deadline = start + TIMEOUT
        while ingested._value.get() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the collector stored {ingested._value.get()} of {count}")
            time.sleep(0.02)
        return time.monotonic() - start
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--samples", type=int, default=5, help="samples per telemetry message")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL run")
    args = parser.parse_args()
    count = args.messages

    with tempfile.TemporaryDirectory(prefix="hezo-bench-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker")
        broker.workdir.mkdir()
        broker.start()
        schema = f"hezo_bench_{secrets.token_hex(4)}"
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
        try:
            runs: list[tuple[str, Callable[[str], float]]] = [
                ("mosquitto_sub", lambda cid: drain_mosquitto_sub(broker, cid, count)),
                ("paho (bare, QoS 1)", lambda cid: drain_paho(broker, cid, count)),
                (
                    "collector -> SQLite",
                    lambda cid: drain_collector(broker, cid, count, f"sqlite:///{workdir / 'bench.db'}"),
                ),
            ]
            if not args.no_postgres:
                with admin.connect() as conn:
                    conn.execute(text(f"CREATE SCHEMA {schema}"))
                runs.append(
                    (
                        "collector -> PostgreSQL",
                        lambda cid: drain_collector(
                            broker,
                            cid,
                            count,
                            POSTGRES,
                            connect_args={"options": f"-c search_path={schema}"},
                        ),
                    )
                )
            ids = {name: f"bench-{index}" for index, (name, _) in enumerate(runs)}
            for client_id in ids.values():
                persist_session(broker.host, broker.port, client_id)
            began = time.monotonic()
            publish_all(broker.host, broker.port, telemetry_stream(count, args.agents, args.samples))
            print(
                f"queued {count} messages ({args.samples} samples each) in {time.monotonic() - began:.1f} s"
            )
            results = {name: run(ids[name]) for name, run in runs}
        finally:
            if not args.no_postgres:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()
            broker.stop()

    reference = results["paho (bare, QoS 1)"]
    print(f"\n{'consumer':<26}{'seconds':>9}{'msg/s':>11}{'samples/s':>12}{'vs paho':>9}")
    for name, seconds in results.items():
        rate = count / seconds
        print(
            f"{name:<26}{seconds:>9.2f}{rate:>11.0f}{rate * args.samples:>12.0f}{reference / seconds:>8.2f}x"
        )


if __name__ == "__main__":
    main()
