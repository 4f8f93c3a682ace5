"""How fast the collector drains a queued stream, against ``mosquitto_sub`` and a bare paho subscriber.

    python -m tests.bench.bench_ingest [--messages 200000] [--agents 1000] [--devices 10] [--rounds 5]
                                       [--no-postgres] [--receiver process|thread]

Each round has a fresh Mosquitto of its own (config/mosquitto.conf: persistence, max_queued_messages
1,000,000) on a free loopback port, so no round's sessions queue another's stream; one persistent session per
consumer is created first, then the stream is published once and queued for every session while its
subscriber is away. The stream is what a fleet sends after connecting (``tests.support.stream.fleet_stream``):
every agent's birth with its devices, every device's state, then telemetry with advancing times, one device's
samples a message, the agents taking turns (``--agents`` 1,000 of ``--devices`` 10 by default). Each consumer
then drains its
queue, in turn, in each of ``--rounds`` rounds: ``mosquitto_sub -c -q 1 -C N``, a bare paho subscriber (QoS
1, persistent session, auto-ack), and the collector (store, batches, manual acks after commit) into SQLite
and into PostgreSQL (127.0.0.1:5432), a fresh SQLite file and PostgreSQL schema every time. Printed: the
median msg/s, the ratio to the bare paho drain (of the medians, then of each round), and the
CPU seconds per 100,000 messages (for the collector, its receiver process too).
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import shutil
import statistics
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
from collector.store.database import make_engine, migrate
from tests.support.mosquitto import Mosquitto, free_port
from tests.support.mqtt import close_client
from tests.support.stream import PREFIX, fleet_stream, persist_session, publish_in_order

POSTGRES = os.environ.get("HEZO_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TIMEOUT = 600.0
PAHO = "paho (bare, QoS 1)"


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


def drain_collector(
    broker: Mosquitto, client_id: str, count: int, url: str, receiver: str, **engine: object
) -> float:
    store = make_engine(url, **engine)  # type: ignore[arg-type]
    migrate(store)
    config = CollectorConfig(
        mqtt=MqttConfig(host=broker.host, port=broker.port, client_id=client_id, receiver=receiver),
        store=StoreConfig(url=url),
    )
    service = CollectorService(config, engine=store)
    kinds = [service.metrics.ingested.labels(kind=kind) for kind in ("birth", "state", "telemetry")]

    def stored() -> float:
        return float(sum(kind._value.get() for kind in kinds))

    start = time.monotonic()
    service.start()
    try:
        deadline = start + TIMEOUT
        while stored() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the collector stored {stored()} of {count}")
            time.sleep(0.02)
        return time.monotonic() - start
    finally:
        service.stop()


Run = Callable[[str, int], float]


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (``mosquitto_sub``, the receiver process)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def one_round(
    broker: Mosquitto, runs: list[tuple[str, Run]], number: int, args: argparse.Namespace
) -> dict[str, tuple[float, float]]:
    """On a fresh broker, queue the stream once for every consumer, then drain it with each:
    {name: (seconds, CPU seconds)}."""
    broker.workdir = broker.workdir.parent / f"broker-{number}"
    broker.workdir.mkdir()
    broker.start()
    try:
        ids = {name: f"bench-{number}-{index}" for index, (name, _) in enumerate(runs)}
        for client_id in ids.values():
            persist_session(broker.host, broker.port, client_id)
        began = time.monotonic()
        publish_in_order(broker.host, broker.port, fleet_stream(args.messages, args.agents, args.devices))
        print(
            f"round {number}: queued {args.messages} messages in {time.monotonic() - began:.1f} s", flush=True
        )
        results: dict[str, tuple[float, float]] = {}
        for name, run in runs:
            cpu = cpu_seconds()
            seconds = run(ids[name], number)
            results[name] = (seconds, cpu_seconds() - cpu)
        return results
    finally:
        broker.stop(kill=True)  # thrown away with its directory: no need to wait for it to save


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--devices", type=int, default=10, help="devices per agent")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every consumer; medians are printed")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL run")
    parser.add_argument(
        "--receiver", choices=("process", "thread"), default="process", help="the collector's mqtt.receiver"
    )
    args = parser.parse_args()
    count = args.messages

    with tempfile.TemporaryDirectory(prefix="hezo-bench-") as tmp:
        workdir = Path(tmp)
        broker = Mosquitto("127.0.0.1", free_port(), workdir / "broker")
        schemas: list[str] = []
        admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")

        def into_postgres(cid: str, number: int) -> float:
            schema = f"hezo_bench_{secrets.token_hex(4)}"
            schemas.append(schema)
            with admin.connect() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            options = {"options": f"-c search_path={schema}"}
            return drain_collector(broker, cid, count, POSTGRES, args.receiver, connect_args=options)

        runs: list[tuple[str, Run]] = [
            ("mosquitto_sub", lambda cid, _: drain_mosquitto_sub(broker, cid, count)),
            (PAHO, lambda cid, _: drain_paho(broker, cid, count)),
            (
                "collector -> SQLite",
                lambda cid, number: drain_collector(
                    broker, cid, count, f"sqlite:///{workdir / f'bench-{number}.db'}", args.receiver
                ),
            ),
        ]
        if not args.no_postgres:
            runs.append(("collector -> PostgreSQL", into_postgres))
        try:
            rounds = [one_round(broker, runs, number, args) for number in range(1, args.rounds + 1)]
        finally:
            with admin.connect() as conn:
                for schema in schemas:
                    conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            admin.dispose()

    reference = statistics.median(result[PAHO][0] for result in rounds)
    print(
        f"\n{count} messages ({args.agents} agents of {args.devices} devices), median of {args.rounds} rounds"
        f", receiver: {args.receiver} (CPU: this process and its children, a receiver process included)"
    )
    print(f"{'consumer':<26}{'msg/s':>9}{'vs paho':>9}  {'each round':<22}{'CPU s/100k':>10}")
    for name, _ in runs:
        seconds = statistics.median(result[name][0] for result in rounds)
        cpu = statistics.median(result[name][1] for result in rounds)
        each = " ".join(f"{result[PAHO][0] / result[name][0]:.2f}" for result in rounds)
        rate = count / seconds
        print(f"{name:<26}{rate:>9.0f}{reference / seconds:>8.2f}x  {each:<22}{cpu / count * 100_000:>10.2f}")


if __name__ == "__main__":
    main()
