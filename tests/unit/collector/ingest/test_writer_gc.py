"""The writer collects garbage less often while it runs, and never more often than the process asked for."""

import gc
from collections.abc import Iterator

import pytest

from collector.ingest.writer import GC_THRESHOLDS, tune_gc


@pytest.fixture
def thresholds() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


@pytest.mark.usefixtures("thresholds")
def test_the_default_thresholds_are_raised() -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc()
    assert gc.get_threshold() == GC_THRESHOLDS


@pytest.mark.usefixtures("thresholds")
def test_a_higher_threshold_set_elsewhere_is_kept() -> None:
    gc.set_threshold(50_000, 10, 1_000)
    tune_gc()
    assert gc.get_threshold() == (50_000, GC_THRESHOLDS[1], 1_000)
