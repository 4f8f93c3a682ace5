"""The subject mapping a NATS cluster needs to carry hezo (``mappings`` in each node's config).

NATS turns an MQTT topic into a subject (``/`` becomes ``.``, ``+`` becomes ``*``). For each topic agents
publish on, the mapping puts the site's partition right after the prefix, so that one JetStream consumer per
partition sees every message of the sites in it, in order: ``hezo.v1.*.*.telemetry`` becomes
``hezo.v1.{{partition(8,1)}}.{{wildcard(1)}}.{{wildcard(2)}}.telemetry``. Only what agents publish is mapped:
commands to agents keep their subjects, so agents' subscriptions still match them.
"""

from __future__ import annotations

from collector.cluster.partitions import MAX_PARTITIONS
from protocol import Topics


def subject_mappings(prefix: str, partitions: int) -> dict[str, str]:
    """Source subject -> destination, for every topic filter the collector reads."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be from 1 to {MAX_PARTITIONS}, not {partitions}")
    depth = len(prefix.split("/"))
    mappings: dict[str, str] = {}
    for topic in Topics(prefix).collector_filters():
        parts = topic.split("/")
        source = ".".join("*" if part == "+" else part for part in parts)
        out: list[str] = []
        wildcard = 0
        for index, part in enumerate(parts):
            if index == depth:
                out.append(f"{{{{partition({partitions},1)}}}}")
            if part == "+":
                wildcard += 1
                out.append(f"{{{{wildcard({wildcard})}}}}")
            else:
                out.append(part)
        mappings[source] = ".".join(out)
    return mappings


def render_mappings(prefix: str, partitions: int) -> str:
    """The ``mappings = { ... }`` block of a node's config."""
    lines = [
        f'  "{source}": "{destination}"'
        for source, destination in subject_mappings(prefix, partitions).items()
    ]
    return "mappings = {\n" + "\n".join(lines) + "\n}\n"
