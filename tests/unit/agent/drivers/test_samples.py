"""Every sample in config/drivers/ is a valid agent config whose checks can all be built."""

from pathlib import Path

import pytest

from agent.config import load_config
from agent.poller import Device

ROOT = Path(__file__).resolve().parents[4]
# Names certificate files that exist only on a configured machine: test_sync_config.py loads it with its own.
NEEDS_FILES = {"sync.example.yaml"}
SAMPLES = sorted(p for p in (ROOT / "config" / "drivers").glob("*.yaml") if p.name not in NEEDS_FILES)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_a_driver_sample_config_loads_and_builds(sample: Path) -> None:
    config = load_config(sample)
    for device in config.devices:
        assert Device.from_config(device).probes
