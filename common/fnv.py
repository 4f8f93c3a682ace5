"""FNV-1a, 32 bits: the hash NATS's deterministic subject mapping puts sites in partitions with."""

import functools

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a32(data: bytes) -> int:
    """The 32-bit FNV-1a hash of ``data`` (as Go's ``hash/fnv.New32a``, which nats-server uses)."""
    value = _FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return value


@functools.lru_cache(maxsize=65_536)
def site_hash(site: str) -> int:
    """The hash of a site id whose remainder by N is its partition among N (``collector/cluster``).
    Remembered: ingest asks it for every device a batch touches."""
    return fnv1a32(site.encode())
