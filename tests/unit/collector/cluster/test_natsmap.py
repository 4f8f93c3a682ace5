"""The NATS subject mapping covers every topic agents publish on, and nothing the collector sends them."""

import pytest

from collector.cluster.natsmap import render_mappings, subject_mappings
from protocol import Topics


def test_every_topic_the_collector_reads_gets_the_sites_partition_after_the_prefix() -> None:
    mappings = subject_mappings("hezo/v1", 8)
    assert mappings["hezo.v1.*.*.device.*.state"] == (
        "hezo.v1.{{partition(8,1)}}.{{wildcard(1)}}.{{wildcard(2)}}.device.{{wildcard(3)}}.state"
    )
    expected = {topic.replace("/", ".").replace("+", "*") for topic in Topics("hezo/v1").collector_filters()}
    assert set(mappings) == expected


def test_commands_to_agents_are_left_alone() -> None:
    assert not any(source.endswith(".cmd") for source in subject_mappings("hezo/v1", 8))


def test_a_longer_prefix_moves_the_partition_after_it() -> None:
    mappings = subject_mappings("acme/hezo/v1", 2)
    assert mappings["acme.hezo.v1.*.*.event"] == (
        "acme.hezo.v1.{{partition(2,1)}}.{{wildcard(1)}}.{{wildcard(2)}}.event"
    )


def test_the_rendered_block_is_a_nats_config_mappings_section() -> None:
    block = render_mappings("hezo/v1", 4)
    assert block.startswith("mappings = {\n")
    assert (
        '  "hezo.v1.*.*.telemetry": "hezo.v1.{{partition(4,1)}}.{{wildcard(1)}}.{{wildcard(2)}}.telemetry"'
        in block
    )


def test_a_partition_count_out_of_bounds_is_refused() -> None:
    with pytest.raises(ValueError, match="partitions must be from 1 to 1024"):
        subject_mappings("hezo/v1", 0)
