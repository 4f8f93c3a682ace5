"""How fast a collector drains a NATS JetStream cluster's stream, against a bare nats-py consumer of it.

    python -m tests.bench.bench_cluster [--messages 20000] [--sites 16] [--partitions 4] [--nodes 3]

A NATS cluster of its own on loopback (tests/support/nats.py), the consumers made first, then the stream
(valid telemetry envelopes from two agents per site, spread over the sites) published once through one
node's MQTT listener with ``mosquitto_pub``. Then, in turn: a bare nats-py durable pull consumer over all of
``$MQTT.msgs.>`` (fetch 250, ack each, nothing stored), and one collector (``cluster.backbone: jetstream``,
every partition leased, stored into a fresh PostgreSQL schema, acked after each commit). Printed: msg/s of
each and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from collector.config import CollectorConfig
from collector.ingest.consumers import STREAM, consumer_name
from collector.service import CollectorService
from collector.store.schema import messages
from protocol import Envelope, Topics, encode
from tests.support.nats import NatsCluster
from tests.support.postgres import postgres_schema
from tests.support.stream import PREFIX, TS, publish_all

TIMEOUT = 600.0


def stream(count: int, sites: int) -> Iterator[tuple[str, bytes]]:
    """``count`` telemetry messages from ``2 * sites`` agents, seq 1, 2, ... per agent, in order."""
    topics = Topics(PREFIX)
    agents = 2 * sites
    body = {
        "samples": [
            {"device": "rally-bar-1", "metric": f"m{i}", "value": 12.5 + i, "ts": TS} for i in range(5)
        ]
    }
    for number in range(count):
        agent = number % agents
        site, name = f"site-{agent % sites}", f"agent-{agent:03d}"
        envelope = Envelope(site, name, "0190000000000000", number // agents + 1, TS, "telemetry", body)
        yield topics.telemetry(site, name), encode(envelope)


async def _prepare(cluster: NatsCluster, partitions: int) -> None:
    """The consumers first (NATS keeps messages only for consumers that exist): the bare one and hezo's."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    client = await nats.connect(servers=cluster.servers)
    try:
        js = client.jetstream()
        deadline = time.monotonic() + 30
        while True:
            try:
                await js.stream_info(STREAM)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await js.add_consumer(
            STREAM,
            ConsumerConfig(
                durable_name="bench-bare", filter_subject="$MQTT.msgs.>", ack_policy=AckPolicy.EXPLICIT
            ),
        )
        for number in range(partitions):
            subject = f"$MQTT.msgs.{PREFIX.replace('/', '.')}.{number}.>"
            name = consumer_name("hezo-collector", number, 0)
            await js.add_consumer(
                STREAM,
                ConsumerConfig(durable_name=name, filter_subject=subject, ack_policy=AckPolicy.EXPLICIT),
            )
    finally:
        await client.close()


async def _stored_in_stream(cluster: NatsCluster) -> int:
    import nats

    client = await nats.connect(servers=cluster.servers)
    try:
        return int((await client.jetstream().stream_info(STREAM)).state.messages)
    finally:
        await client.close()


async def _drain_bare(cluster: NatsCluster, count: int) -> float:
    import nats
    from nats.errors import TimeoutError as FetchTimeout

    client = await nats.connect(servers=cluster.servers)
    try:
        subscription = await client.jetstream().pull_subscribe_bind(durable="bench-bare", stream=STREAM)
        got = 0
        start = time.monotonic()
        while got < count:
            try:
                batch = await subscription.fetch(250, timeout=1)
            except (TimeoutError, FetchTimeout):
                continue
            for msg in batch:
                await msg.ack()
            got += len(batch)
        return time.monotonic() - start
    finally:
        await client.close()


def drain_hezo(cluster: NatsCluster, engine: Engine, partitions: int, count: int) -> float:
    with engine.connect() as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    url = engine.url.render_as_string(hide_password=False)
    config = CollectorConfig.model_validate(
        {
            "mqtt": {"port": cluster.nodes[0].mqtt_port, "client_id": "bench-collector"},
            "store": {"url": url},
            "ingest": {"boot_ids": "any"},
            "cluster": {
                "enabled": True,
                "partitions": partitions,
                "backbone": "jetstream",
                "nats": {"servers": cluster.servers},
            },
        }
    )
    service = CollectorService(config, engine=engine)
    service.start()  # start-up (migrations, leases, consumers) is not counted: from the first message stored
    try:
        deadline = time.monotonic() + TIMEOUT
        first: float | None = None
        while True:
            with engine.connect() as conn:
                stored = conn.execute(select(func.count()).select_from(messages)).scalar_one()
            if stored and first is None:
                first = time.monotonic()
            if stored >= count and first is not None:
                return time.monotonic() - first
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the collector stored {stored} of {count} messages in {TIMEOUT} s ({schema})"
                )
            time.sleep(0.05)
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--sites", type=int, default=16)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hezo-bench-cluster-") as root:
        cluster = NatsCluster(Path(root), size=args.nodes, partitions=args.partitions)
        with cluster:
            # NATS makes its MQTT streams at the first MQTT connection.
            publish_all("127.0.0.1", cluster.nodes[0].mqtt_port, [(f"{PREFIX}/warm/up/cmd", b"{}")])
            asyncio.run(_prepare(cluster, args.partitions))
            began = time.monotonic()
            sent = publish_all("127.0.0.1", cluster.nodes[0].mqtt_port, stream(args.messages, args.sites))
            published = time.monotonic() - began
            assert asyncio.run(_stored_in_stream(cluster)) >= sent, (
                "the stream holds fewer than were published"
            )
            bare = asyncio.run(_drain_bare(cluster, sent))
            with postgres_schema() as engine:
                hezo = drain_hezo(cluster, engine, args.partitions, sent)
        rows = [
            ("published (mosquitto_pub -> NATS MQTT, QoS 1)", published),
            ("nats-py bare pull consumer (ack each, no store)", bare),
            ("hezo collector (jetstream backbone, PostgreSQL)", hezo),
        ]
        print(f"{sent} messages, {args.sites} sites, {args.partitions} partitions, {args.nodes} NATS nodes")
        print(f"{'consumer':<52} {'seconds':>8} {'msg/s':>9}")
        for name, seconds in rows:
            print(f"{name:<52} {seconds:>8.2f} {sent / seconds:>9.0f}")
        print(f"hezo / bare: {bare / hezo:.2f}")


if __name__ == "__main__":
    main()
