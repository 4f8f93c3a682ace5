"""Every sample in config/drivers/ is a valid agent config whose checks can all be built."""

from pathlib import Path

import pytest

from agent.config import load_config
from agent.poller import Device

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("sample", sorted((ROOT / "config" / "drivers").glob("*.yaml")), ids=lambda p: p.name)
def test_a_driver_sample_config_loads_and_builds(sample: Path) -> None:
    config = load_config(sample)
    for device in config.devices:
        assert Device.from_config(device).probes
