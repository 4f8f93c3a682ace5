"""What the JetStream receiver hands the writer: the topic the agent published on, and nothing dropped."""

from collector.cluster.partitions import partition_of
from collector.ingest.consumers import consumer_name, generation_of, misplaced
from collector.ingest.jetstream import topic_of


def test_the_partition_and_the_stream_prefix_are_taken_out_of_the_subject() -> None:
    subject = "$MQTT.msgs.hezo.v1.3.warsaw.room-101-pc.device.rally-bar-1.state"
    assert topic_of(subject, "hezo/v1") == "hezo/v1/warsaw/room-101-pc/device/rally-bar-1/state"


def test_a_subject_without_a_partition_is_passed_on_as_it_stands_for_the_pipeline_to_reject() -> None:
    assert topic_of("$MQTT.msgs.hezo.v1.warsaw.pc.status", "hezo/v1") == "hezo/v1/warsaw/pc/status"
    assert topic_of("$MQTT.msgs.other.thing", "hezo/v1") == "other/thing"


def test_a_dot_in_a_topic_level_comes_back_as_a_dot() -> None:
    # NATS writes an MQTT "." as "//"; the pipeline then refuses the id, but the topic is the one sent.
    assert topic_of("$MQTT.msgs.hezo.v1.0.war//saw.pc.status", "hezo/v1") == "hezo/v1/war.saw/pc/status"


def test_each_generation_of_a_partition_has_a_consumer_of_its_own() -> None:
    assert consumer_name("hezo-collector", 3, 7) == "hezo-collector-p3-g7"


def test_a_consumers_generation_is_read_back_from_its_name_and_a_foreign_name_has_none() -> None:
    assert generation_of(consumer_name("hezo-collector", 3, 7)) == 7
    assert generation_of(consumer_name("hezo-collector", 3, 7, "a1b2c3")) == 7
    assert consumer_name("hezo-collector", 3, 7, "a1b2c3") == "hezo-collector-p3-g7-ra1b2c3"
    assert generation_of("VariiPJj_tkfMsp44mjFanVFpbtLnwc") == -1


def test_a_site_the_nats_mapping_put_where_the_partition_count_would_is_in_place() -> None:
    site = "warsaw"
    subject = f"$MQTT.msgs.hezo.v1.{partition_of(site, 8)}.{site}.pc.status"
    assert misplaced(subject, "hezo/v1", 8) is None
    assert (
        misplaced("$MQTT.msgs.hezo.v1.warsaw.pc.status", "hezo/v1", 8) is None
    )  # not mapped: rejected later


def test_a_site_the_nats_mapping_put_elsewhere_says_both_partitions() -> None:
    site = next(s for s in (f"site-{n}" for n in range(100)) if partition_of(s, 4) != partition_of(s, 2))
    subject = f"$MQTT.msgs.hezo.v1.{partition_of(site, 2)}.{site}.pc.telemetry"
    wrong = misplaced(subject, "hezo/v1", 4)
    assert wrong is not None
    assert f"cluster.partitions is 4, which puts site {site} in partition {partition_of(site, 4)}" in wrong
    assert f"mapping put it in partition {partition_of(site, 2)}" in wrong
