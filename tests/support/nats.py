"""A NATS JetStream cluster of our own on loopback: nodes on free ports, each with its MQTT listener, its own
store directory under the test's tmp path, and hezo's subject mapping (``collector/cluster/natsmap.py``).
Never the system's server on 4222."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from collector.cluster.natsmap import render_mappings
from tests.support.mosquitto import free_port, wait_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


@dataclass
class Node:
    name: str
    client_port: int
    route_port: int
    mqtt_port: int
    http_port: int
    store: Path
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class NatsCluster:
    """``size`` nodes clustered with each other; ``start()`` waits until JetStream answers on every node."""

    root: Path
    size: int = 3
    partitions: int = 4
    prefix: str = "hezo/v1"
    #: More of each node's config (a ``tls`` block, ``authorization``).
    extra: str = ""
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        for index in range(self.size):
            name = f"n{index + 1}"
            self.nodes.append(
                Node(
                    name,
                    free_port(),
                    free_port(),
                    free_port(),
                    free_port(),
                    self.root / name / "store",
                    self.root / name / "nats.conf",
                    self.root / name / "nats.log",
                )
            )

    @property
    def servers(self) -> list[str]:
        return [node.url for node in self.nodes]

    def _write(self, node: Node) -> None:
        node.store.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(
            f"nats-route://127.0.0.1:{other.route_port}" for other in self.nodes if other is not node
        )
        node.config.write_text(
            f"server_name: {node.name}\n"
            f"listen: 127.0.0.1:{node.client_port}\n"
            f"http: 127.0.0.1:{node.http_port}\n"
            f'jetstream {{ store_dir: "{node.store}", max_memory_store: 64MB, max_file_store: 1GB }}\n'
            + (
                f"cluster {{ name: hezo-test, listen: 127.0.0.1:{node.route_port}, routes: [{routes}] }}\n"
                if self.size > 1
                else ""
            )
            # Replicas said, not left to NATS: it counts the nodes it knows when the first MQTT client comes.
            + f"mqtt {{ listen: 127.0.0.1:{node.mqtt_port}, stream_replicas: {min(self.size, 3)} }}\n"
            + render_mappings(self.prefix, self.partitions)
            + self.extra
        )

    def start(self) -> None:
        for node in self.nodes:
            self._write(node)
            self.start_node(node)
        for node in self.nodes:
            wait_port("127.0.0.1", node.client_port)
        deadline = time.monotonic() + 60
        while not (all(self._healthy(node) for node in self.nodes) and self._formed()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the NATS cluster did not become healthy; see {self.root}/*/nats.log")
            time.sleep(0.2)

    def start_node(self, node: Node) -> None:
        with node.log.open("ab") as log:
            node.process = subprocess.Popen(
                [NATS_SERVER, "-c", str(node.config)], stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies as a crash would kill it."""
        if node.process is not None and node.process.poll() is None:
            node.process.kill()
            node.process.wait()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        for node in self.nodes:
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait()

    def _formed(self) -> bool:
        """Whether JetStream's meta group has a leader that every other node follows, current."""
        if self.size == 1:
            return True
        for node in self.nodes:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/jsz", timeout=2) as answer:
                    meta = json.load(answer).get("meta_cluster") or {}
            except OSError:
                return False
            followers = meta.get("replicas") or []
            if meta.get("leader") == node.name:
                return len(followers) == self.size - 1 and all(peer.get("current") for peer in followers)
        return False

    @staticmethod
    def _healthy(node: Node) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{node.http_port}/healthz", timeout=2) as answer:
                return bool(json.load(answer).get("status") == "ok")
        except OSError:
            return False

    def __enter__(self) -> NatsCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
