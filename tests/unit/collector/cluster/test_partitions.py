"""Sites land in the partition NATS's ``{{partition(N,1)}}`` puts them in (FNV-1a 32, modulo N)."""

import pytest

from collector.cluster.partitions import partition_of
from common.fnv import fnv1a32


def test_fnv1a32_matches_the_published_test_vectors() -> None:
    # From the FNV reference test suite (Fowler, Noll, Vo): "" and "a", "foobar" for FNV-1a 32.
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def test_a_site_always_lands_in_the_same_partition_below_the_count() -> None:
    seen = {partition_of(f"site-{n}", 8) for n in range(200)}
    assert seen == set(range(8))
    assert partition_of("warsaw-hq", 8) == partition_of("warsaw-hq", 8)


@pytest.mark.parametrize("count", [0, 1025])
def test_a_partition_count_out_of_bounds_is_refused(count: int) -> None:
    with pytest.raises(ValueError, match="partitions must be from 1 to 1024"):
        partition_of("site", count)
