"""Where a partition's new holder starts reading: right after what the holders before it acknowledged, so
nothing is skipped and nothing stored is read again but what they had in hand without an ack.

The fake stands in for nats-py's ``JetStreamContext`` with the calls ``Consumers`` makes, and the
``ConsumerInfo`` NATS answers with: ``ack_floor.stream_seq`` is the last stream seq up to which every message
was acknowledged (a message acknowledged after an unacknowledged one does not move it).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from nats.js.api import (
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    SequenceInfo,
    StreamConfig,
    StreamInfo,
    StreamState,
)

from collector.cluster.settings import NatsConfig
from collector.ingest.consumers import STREAM, Consumers, PartitionCountError, guard_subjects, unguarded

PREFIX = "hezo/v1"


class FakeJetStream:
    """The consumers of ``$MQTT_msgs``, and what was done to them in order."""

    def __init__(self, last_seq: int = 0) -> None:
        self.consumers: dict[str, ConsumerInfo] = {}
        self.done: list[tuple[str, str]] = []
        self.last_seq = last_seq

    def had(
        self,
        name: str,
        *,
        acked_up_to: int,
        delivered: int,
        start: int | None = None,
        made_for: int | None = None,
    ) -> None:
        """A consumer a holder before used: delivered up to ``delivered``, acknowledged all up to
        ``acked_up_to``; made for ``made_for`` partitions (None: made before consumers said so)."""
        partition = name.rsplit("-p", maxsplit=1)[-1].split("-", maxsplit=1)[0]
        config = ConsumerConfig(
            durable_name=name,
            description=None if made_for is None else f"hezo partition {partition} of {made_for}",
            deliver_policy=DeliverPolicy.ALL if start is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=start,
        )
        self.consumers[name] = ConsumerInfo(
            name=name,
            stream_name=STREAM,
            config=config,
            created=datetime.now(UTC),
            delivered=SequenceInfo(consumer_seq=delivered, stream_seq=delivered),
            ack_floor=SequenceInfo(consumer_seq=acked_up_to, stream_seq=acked_up_to),
        )

    async def consumers_info(self, stream: str) -> list[ConsumerInfo]:
        assert stream == STREAM
        return list(self.consumers.values())

    async def add_consumer(self, stream: str, config: ConsumerConfig) -> ConsumerInfo:
        assert stream == STREAM
        assert config.durable_name is not None
        info = ConsumerInfo(
            name=config.durable_name,
            stream_name=stream,
            config=config,
            created=datetime.now(UTC),
            ack_floor=SequenceInfo(consumer_seq=0, stream_seq=0),
        )
        self.consumers[config.durable_name] = info
        self.done.append(("add", config.durable_name))
        return info

    async def delete_consumer(self, stream: str, name: str) -> bool:
        assert stream == STREAM
        del self.consumers[name]
        self.done.append(("delete", name))
        return True

    async def stream_info(self, stream: str) -> StreamInfo:
        assert stream == STREAM
        state = StreamState(messages=0, bytes=0, first_seq=1, last_seq=self.last_seq, consumer_count=0)
        return StreamInfo(config=StreamConfig(name=stream), state=state)

    def config_of(self, name: str) -> ConsumerConfig:
        return self.consumers[name].config


def consumers(js: FakeJetStream, partitions: int = 4) -> Consumers:
    return Consumers(cast(Any, js), NatsConfig(servers=["nats://127.0.0.1:4222"]), PREFIX, partitions)


def take_over(js: FakeJetStream, partition: int, generation: int, after: int | None = None) -> str:
    return asyncio.run(consumers(js).take_over(partition, generation, after))


def test_a_new_holder_starts_at_the_first_message_its_predecessor_did_not_acknowledge() -> None:
    js = FakeJetStream()
    # The dead holder had 50 delivered and had stored and acknowledged all up to 41.
    js.had("hezo-collector-p2-g3-ra1b2c3", acked_up_to=41, delivered=50)
    name = take_over(js, 2, 4)
    config = js.config_of(name)
    assert name.startswith("hezo-collector-p2-g4-r")
    assert (config.deliver_policy, config.opt_start_seq) == (DeliverPolicy.BY_START_SEQUENCE, 42)
    assert config.filter_subject == "$MQTT.msgs.hezo.v1.2.>"


def test_the_earlier_consumers_go_only_once_the_new_one_exists() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p2-g3-ra1b2c3", acked_up_to=41, delivered=50)
    name = take_over(js, 2, 4)
    assert js.done == [("add", name), ("delete", "hezo-collector-p2-g3-ra1b2c3")]
    assert list(js.consumers) == [name]


def test_a_predecessor_that_acknowledged_nothing_is_resumed_where_it_started() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p0-g5-r000001", acked_up_to=0, delivered=12, start=100)
    name = take_over(js, 0, 6)
    assert js.config_of(name).opt_start_seq == 100


def test_a_partition_nobody_has_read_yet_is_read_from_its_first_message() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p1-g0", acked_up_to=0, delivered=0)  # made by nats-setup or a collector's start
    name = take_over(js, 1, 1)
    assert js.config_of(name).opt_start_seq == 1


def test_the_newest_generation_decides_not_a_leftover_made_again_late() -> None:
    js = FakeJetStream()
    # A collector starting late made -g0 again after the holder of generation 3 had acknowledged up to 41.
    js.had("hezo-collector-p2-g0", acked_up_to=0, delivered=0)
    js.had("hezo-collector-p2-g3-ra1b2c3", acked_up_to=41, delivered=45)
    name = take_over(js, 2, 4)
    assert js.config_of(name).opt_start_seq == 42
    assert list(js.consumers) == [name]


def test_other_partitions_and_newer_generations_are_left_alone() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p2-g3-ra1b2c3", acked_up_to=41, delivered=50)
    js.had("hezo-collector-p3-g1-rffffff", acked_up_to=7, delivered=7)
    js.had("hezo-collector-p2-g9-rbbbbbb", acked_up_to=70, delivered=70)  # a holder after this one
    name = take_over(js, 2, 4)
    assert js.config_of(name).opt_start_seq == 42
    assert set(js.consumers) == {name, "hezo-collector-p3-g1-rffffff", "hezo-collector-p2-g9-rbbbbbb"}


def test_a_reader_that_lost_a_delivery_reads_again_right_after_what_it_handed_on() -> None:
    js = FakeJetStream()
    first = take_over(js, 2, 4)
    js.had(first, acked_up_to=30, delivered=40)
    again = take_over(js, 2, 4, after=37)  # handed the writer up to 37; 38 was lost on the way
    assert js.config_of(again).opt_start_seq == 38
    assert list(js.consumers) == [again]


def test_ensure_makes_a_consumer_for_each_partition_without_one_and_no_other() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p1-g2-rcccccc", acked_up_to=5, delivered=5)
    made = asyncio.run(consumers(js, 3).ensure())
    assert made == ["hezo-collector-p0-g0", "hezo-collector-p2-g0"]
    assert js.config_of("hezo-collector-p0-g0").deliver_policy == DeliverPolicy.ALL
    assert js.config_of("hezo-collector-p0-g0").description == "hezo partition 0 of 3"
    assert asyncio.run(consumers(js, 3).ensure()) == []


def test_a_consumer_made_after_nats_took_messages_is_said_to_be_late(
    caplog: pytest.LogCaptureFixture,
) -> None:
    js = FakeJetStream(last_seq=44)
    with caplog.at_level(logging.WARNING, logger="collector.ingest.consumers"):
        asyncio.run(consumers(js, 2).ensure())
    [record] = caplog.records
    assert "after NATS had taken 44 messages" in record.getMessage()
    assert "hezo-collector-p0-g0, hezo-collector-p1-g0" in record.getMessage()


def recorded_for(js: FakeJetStream, partitions: int) -> None:
    """The consumers collectors configured for ``partitions`` partitions leave on NATS."""
    for number in range(partitions):
        name = f"hezo-collector-p{number}-g{number + 1}-r00000{number}"
        js.had(name, acked_up_to=9, delivered=9, made_for=partitions)


@pytest.mark.parametrize(("recorded", "configured"), [(4, 8), (4, 2)])
def test_a_partition_count_other_than_the_consumers_is_refused_naming_both(
    recorded: int, configured: int
) -> None:
    js = FakeJetStream()
    recorded_for(js, recorded)
    with pytest.raises(PartitionCountError) as refused:
        asyncio.run(consumers(js, configured).ensure())
    assert f"cluster.partitions is {configured}" in str(refused.value)
    assert f"was made for {recorded} partitions" in str(refused.value)
    assert "Changing the number of partitions" in str(refused.value)
    assert js.done == []  # nothing made


def test_a_consumer_from_before_counts_were_recorded_betrays_a_larger_count() -> None:
    js = FakeJetStream()
    js.had("hezo-collector-p5-g2-r000005", acked_up_to=9, delivered=9)
    with pytest.raises(PartitionCountError, match="was made for at least 6 partitions"):
        asyncio.run(consumers(js, 4).ensure())


def test_the_same_count_and_other_names_on_the_stream_pass() -> None:
    js = FakeJetStream()
    recorded_for(js, 4)
    js.had("hezo-other-p7-g1", acked_up_to=0, delivered=0)  # another collector set's consumers
    js.had("VariiPJj_tkfMsp44mjFanVFpbtLnwc", acked_up_to=0, delivered=0)  # an MQTT session's
    del js.consumers["hezo-collector-p2-g3-r000002"]  # a partition without one gets one again
    assert asyncio.run(consumers(js, 4).ensure()) == ["hezo-collector-p2-g0"]


def test_the_guards_are_the_partitions_past_the_count_and_the_subjects_before_the_mapping() -> None:
    assert guard_subjects("hezo/v1", 2) == [
        "hezo.v1.2.>",
        "hezo.v1.3.>",
        "hezo.v1.*.*.status",
        "hezo.v1.*.*.device.*.state",
        "hezo.v1.*.*.telemetry",
        "hezo.v1.*.*.event",
        "hezo.v1.*.*.reply",
    ]
    assert len(guard_subjects("hezo/v1", 1000)) == 24 + 5  # no partition past the 1,024th


@pytest.mark.parametrize(
    ("subject", "said"),
    [
        ("hezo.v1.3.warsaw.pc.status", "in partition 3, past cluster.partitions (2)"),
        ("hezo.v1.2.warsaw.pc.device.bar.state", "in partition 2, past cluster.partitions (2)"),
        ("hezo.v1.warsaw.pc.telemetry", "without a partition after the prefix: the nodes have no mapping"),
    ],
)
def test_an_agents_message_on_a_guard_says_what_is_wrong(subject: str, said: str) -> None:
    wrong = unguarded(subject, "hezo/v1", 2)
    assert wrong is not None
    assert said in wrong
    assert "hezo-collector cluster nats-mappings" in wrong


def test_a_command_to_a_site_named_by_a_number_is_no_sign_of_a_wrong_mapping() -> None:
    assert unguarded("hezo.v1.3.pc.cmd", "hezo/v1", 2) is None
    assert unguarded("hezo.v1.3.pc.status.extra", "hezo/v1", 2) is None
