"""``cluster:`` in the collector's config: several collectors on one store, and the clustered backbone.

Off by default: one collector, its MQTT session on Mosquitto. ``enabled: true`` makes the collectors sharing
the store split the sites between them by leases (docs/cluster.md); ``backbone: jetstream`` makes them
consume a NATS JetStream cluster's ``$MQTT_msgs`` stream instead of an MQTT session (agents still speak MQTT,
to any NATS node).
"""

from __future__ import annotations

import socket
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from collector.cluster.partitions import MAX_PARTITIONS
from common.configfile import TlsConfig

#: A NATS server URL: scheme, host, port; no credentials in it (``user`` and ``password`` have keys).
NatsUrl = Annotated[
    str,
    Field(pattern=r"^(nats|tls)://[A-Za-z0-9.\-\[\]:]{1,253}:[0-9]{1,5}$", max_length=270),
]
#: What NATS accepts in a consumer's name, kept short: the partition and generation are appended.
ConsumerName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
#: A collector's name in the lease table.
NodeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,96}$")]


def _hostname() -> str:
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())[:96]
    return name or "collector"


class NatsConfig(BaseModel):
    """How to reach the NATS cluster (any of its nodes) and consume its ``$MQTT_msgs`` stream."""

    model_config = ConfigDict(extra="forbid")

    servers: list[NatsUrl] = Field(min_length=1, max_length=16)
    user: str | None = Field(default=None, min_length=1, max_length=256)
    password: SecretStr | None = Field(default=None, max_length=1024)
    #: TLS to the nodes: the CA to verify them with (default: the system's), and a client certificate.
    tls: TlsConfig | None = None
    #: The durable consumers' names begin with this, then ``-p<partition>-g<generation>``.
    consumer: ConsumerName = "hezo-collector"
    #: Messages asked for at once, and unacknowledged at most per partition (the consumer's max_ack_pending).
    fetch: int = Field(default=250, ge=1, le=10_000)
    max_ack_pending: int = Field(default=2_000, ge=1, le=100_000)
    #: Seconds before NATS delivers an unacknowledged message again.
    ack_wait: float = Field(default=60.0, ge=5, le=3600)


class ClusterConfig(BaseModel):
    """Several collectors on one store (``enabled``), and where they read from (``backbone``)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    #: This collector's name in the lease table (a random suffix per start is added).
    node: NodeName = Field(default_factory=_hostname)
    #: Sites are split into this many partitions; with ``backbone: jetstream`` the NATS subject mapping
    #: must use the same number (``{{partition(N,1)}}``).
    partitions: int = Field(default=8, ge=1, le=MAX_PARTITIONS)
    #: A holder that stops renewing loses its partitions after this many seconds.
    lease_seconds: float = Field(default=15.0, ge=2, le=600)
    backbone: Literal["mqtt", "jetstream"] = "mqtt"
    nats: NatsConfig | None = None

    @model_validator(mode="after")
    def _backbone(self) -> ClusterConfig:
        if self.backbone == "jetstream" and not self.enabled:
            raise ValueError("backbone: jetstream needs enabled: true (the partitions are leased)")
        if self.backbone == "jetstream" and self.nats is None:
            raise ValueError("backbone: jetstream needs nats: with the servers to connect to")
        if self.nats is not None and (self.nats.user is None) != (self.nats.password is None):
            raise ValueError("nats: user and password go together")
        return self
