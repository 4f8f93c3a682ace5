"""Sites in partitions, the way NATS's deterministic subject mapping puts them.

The clustered backbone (docs/cluster.md) maps each agent's subject ``hezo.v1.<site>.<agent>.<kind>...`` to
``hezo.v1.<partition>.<site>...`` with ``{{partition(N,1)}}``: the FNV-1a 32-bit hash of the site id, modulo
N. The collector computes the same number, so the collector that consumes a partition's messages is also the
one that decides its sites' tickets, and ``owns(site)`` needs no lookup.
"""

from __future__ import annotations

from common.fnv import site_hash

#: Partitions at most: a lease row and a JetStream consumer each.
MAX_PARTITIONS = 1024


def partition_of(site: str, partitions: int) -> int:
    """The partition of ``site`` among ``partitions``, as NATS's ``{{partition(partitions,1)}}`` makes it."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be from 1 to {MAX_PARTITIONS}, not {partitions}")
    return site_hash(site) % partitions
