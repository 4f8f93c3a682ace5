"""A partition changing hands on a real NATS: the new holder reads every message the previous holder had not
acknowledged, from the first of them, in order, and none it had acknowledged (not even one acknowledged out
of order, past an unacknowledged one). A receiver whose partition count is not the NATS mapping's reads
nothing on, and says so, also when the mapping is for a multiple of its count."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.cluster.partitions import partition_of
from collector.cluster.settings import NatsConfig
from collector.ingest.jetstream import JetStreamReceiver
from collector.ingest.natsconnect import make_consumers, open_mqtt_once
from collector.ingest.session import SessionSettings
from collector.store.database import utcnow
from tests.integration.test_cluster import Agent, Queue
from tests.support.nats import NatsCluster
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SENT = 10


class Holder:
    """This collector holding the one partition, at the generation a test gives."""

    partitions = 1

    def __init__(self, generation: int) -> None:
        self._generation = generation

    def owned(self) -> frozenset[int]:
        return frozenset({0})

    def generation(self, number: int) -> int | None:
        return self._generation


def partition_consumers(nats: NatsCluster) -> dict[str, tuple[int, int]]:
    """Each consumer of partition 0: its ack floor and the messages it has yet to deliver."""

    async def infos() -> dict[str, tuple[int, int]]:
        import nats as client

        connection = await client.connect(servers=nats.servers)
        try:
            return {
                info.name: (info.ack_floor.stream_seq if info.ack_floor else 0, info.num_pending or 0)
                for info in await connection.jetstream().consumers_info("$MQTT_msgs")
                if info.name.startswith("hezo-collector-p0-")
            }
        finally:
            await connection.close()

    return asyncio.run(infos())


def test_a_new_holder_resumes_at_the_first_message_the_previous_one_did_not_acknowledge(
    tmp_path: Path,
) -> None:
    with NatsCluster(tmp_path / "nats", size=1, partitions=1) as nats:
        node = nats.nodes[0]
        config = NatsConfig(servers=nats.servers)
        streams = functools.partial(
            open_mqtt_once, SessionSettings("127.0.0.1", node.mqtt_port, "takeover", "hezo/v1", 30)
        )
        make_consumers(config, "hezo/v1", 1, streams)
        agent = Agent("hq", node.mqtt_port)
        try:
            for _ in range(SENT):
                agent.send(agent.fake.telemetry(at=datetime.now(UTC)))
        finally:
            agent.close()

        first, taken = Queue(), Queue()
        before = JetStreamReceiver(config, "hezo/v1", first, Holder(1), now=utcnow)
        before.start()
        try:
            eventually(f"the first holder handed all {SENT} on", lambda: len(first.items) == SENT)
            # Stored and acknowledged: 1 to 4, and 6 (a batch can commit out of the stream's order).
            for message in first.items[:4] + first.items[5:6]:
                assert message.ack is not None
                message.ack()
            before.flush_acks()
            eventually(
                "NATS has the first holder's acks up to the 4th",
                lambda: [floor for floor, _ in partition_consumers(nats).values()] == [4],
            )
        finally:
            before.stop()  # as if it died: 5 and 7 to 10 were handed on, never acknowledged

        # The 6th went from the stream with its ack (interest retention): 5 and 7 to 10 are left, in order.
        unacknowledged = [message.payload for message in first.items[4:5] + first.items[6:]]
        after = JetStreamReceiver(config, "hezo/v1", taken, Holder(2), now=utcnow)
        after.start()
        try:
            eventually(
                "the new holder read its partition to the end",
                lambda: [
                    name
                    for name, (_, pending) in partition_consumers(nats).items()
                    if "-g2-" in name and pending == 0 and len(taken.items) >= len(unacknowledged)
                ],
            )
        finally:
            after.stop()
        assert [message.payload for message in taken.items] == unacknowledged
        [name] = partition_consumers(nats)
        assert "-g2-" in name  # the previous holder's consumer is gone


class Holding:
    """A collector configured for ``partitions`` partitions, holding them all."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def owned(self) -> frozenset[int]:
        return frozenset(range(self.partitions))

    def generation(self, number: int) -> int | None:
        return 1


def given_up(tmp_path: Path, mapping: int, configured: int, site: str) -> tuple[str, list[object]]:
    """A birth from ``site`` through a NATS whose mapping is for ``mapping`` partitions, read by a receiver
    configured for ``configured``: why it gives up, and what it handed on meanwhile."""
    with NatsCluster(tmp_path / "nats", size=1, partitions=mapping) as nats:
        node = nats.nodes[0]
        streams = functools.partial(
            open_mqtt_once, SessionSettings("127.0.0.1", node.mqtt_port, "mapping", "hezo/v1", 30)
        )
        queue = Queue()
        receiver = JetStreamReceiver(
            NatsConfig(servers=nats.servers),
            "hezo/v1",
            queue,
            Holding(configured),
            now=utcnow,
            make_streams=streams,
        )
        receiver.start()
        try:
            assert receiver.wait_subscribed(60)
            agent = Agent(site, node.mqtt_port)
            try:
                agent.send(agent.fake.birth(at=datetime.now(UTC)))
            finally:
                agent.close()
            problem = eventually("the receiver gives up", receiver.problem)
        finally:
            receiver.stop()
    return problem, list(queue.items)


def test_a_receiver_whose_count_is_not_the_nats_mappings_stops_and_hands_nothing_on(tmp_path: Path) -> None:
    # Sites the mapping for 2 partitions puts in another partition than 4 would.
    site = next(s for s in (f"site-{n}" for n in range(100)) if partition_of(s, 4) != partition_of(s, 2))
    problem, handed_on = given_up(tmp_path, mapping=2, configured=4, site=site)
    assert f"cluster.partitions is 4, which puts site {site} in partition {partition_of(site, 4)}" in problem
    assert f"mapping put it in partition {partition_of(site, 2)}" in problem
    assert handed_on == []  # the birth waits in the stream for a collector of the mapping's count


def test_a_mapping_for_a_multiple_of_the_receivers_count_is_seen_and_said(tmp_path: Path) -> None:
    # A site the mapping for 4 partitions puts in partition 2 or 3, which no consumer of 2 partitions reads.
    site = next(s for s in (f"site-{n}" for n in range(100)) if partition_of(s, 4) >= 2)
    problem, handed_on = given_up(tmp_path, mapping=4, configured=2, site=site)
    assert f"in partition {partition_of(site, 4)}, past cluster.partitions (2)" in problem
    assert handed_on == []
