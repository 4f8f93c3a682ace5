"""The shipped cluster samples load, and the NATS node's mapping is the one the collectors expect."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from collector.cluster.natsmap import render_mappings
from collector.cluster.settings import ClusterConfig
from collector.config import load_config

SAMPLES = Path(__file__).resolve().parents[4] / "config" / "nats"


def test_the_collector_sample_loads_with_the_jetstream_backbone() -> None:
    config = load_config(SAMPLES / "collector.example.yaml")
    assert config.cluster.backbone == "jetstream"
    assert config.cluster.nats is not None
    assert len(config.cluster.nats.servers) == 3


def test_the_node_sample_maps_subjects_into_the_collectors_partitions() -> None:
    config = load_config(SAMPLES / "collector.example.yaml")
    node = (SAMPLES / "node-1.conf").read_text()
    assert render_mappings(config.mqtt.prefix, config.cluster.partitions) in node


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"backbone": "jetstream", "nats": {"servers": ["nats://n1:4222"]}}, "needs enabled: true"),
        ({"enabled": True, "backbone": "jetstream"}, "needs nats:"),
        ({"enabled": True, "nats": {"servers": ["nats://user:pw@n1:4222"]}}, "servers.0"),
        ({"enabled": True, "nats": {"servers": ["nats://n1:4222"], "user": "x"}}, "user and password go"),
        ({"enabled": True, "partitions": 0}, "partitions"),
    ],
)
def test_a_bad_cluster_section_says_what_is_wrong(settings: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        ClusterConfig.model_validate(settings)
