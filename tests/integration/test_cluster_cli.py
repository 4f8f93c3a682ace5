"""``hezo-collector cluster``: the leases as they stand, and the NATS mapping for the partitions set."""

import json
from pathlib import Path

import pytest

from collector.cluster.leases import Leases
from collector.cluster.natsmap import render_mappings
from tests.integration.test_collector_cli import run_cli
from tests.support.collector import migrated_engine
from tests.support.mosquitto import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "collector.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        "cluster: {enabled: true, partitions: 3}\n"
    )
    return path


def test_leases_lists_who_holds_which_partition_now(tmp_path: Path, config: Path) -> None:
    engine = migrated_engine(tmp_path)
    Leases(engine, "collector-a-1234", ttl=600).acquire("partition/2")
    engine.dispose()
    done = run_cli(tmp_path, "--config", str(config), "cluster", "leases", "--json")
    assert done.returncode == 0, done.stderr
    [lease] = json.loads(done.stdout)
    assert (lease["name"], lease["holder"], lease["generation"]) == ("partition/2", "collector-a-1234", 1)


def test_nats_mappings_prints_the_block_for_the_configured_partitions(tmp_path: Path, config: Path) -> None:
    done = run_cli(tmp_path, "--config", str(config), "cluster", "nats-mappings")
    assert done.returncode == 0, done.stderr
    assert done.stdout == render_mappings("hezo/v1", 3)


def test_nats_mappings_refuses_a_partition_count_out_of_bounds(tmp_path: Path, config: Path) -> None:
    done = run_cli(tmp_path, "--config", str(config), "cluster", "nats-mappings", "--partitions", "5000")
    assert done.returncode == 3
    assert "--partitions must be from 1 to 1024, not 5000" in done.stderr


def test_nats_setup_refuses_a_collector_that_does_not_read_nats(tmp_path: Path, config: Path) -> None:
    done = run_cli(tmp_path, "--config", str(config), "cluster", "nats-setup")
    assert done.returncode == 3
    assert "nats-setup needs cluster.backbone: jetstream" in done.stderr


def test_nats_setup_says_which_nodes_it_could_not_reach(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    path = tmp_path / "jetstream.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 'collector.db'}'}}\n"
        "cluster: {enabled: true, partitions: 3, backbone: jetstream,"
        f" nats: {{servers: ['nats://127.0.0.1:{port}']}}}}\n"
    )
    done = run_cli(tmp_path, "--config", str(path), "cluster", "nats-setup")
    assert done.returncode == 1
    assert f"could not make the consumers on nats://127.0.0.1:{port}" in done.stderr
