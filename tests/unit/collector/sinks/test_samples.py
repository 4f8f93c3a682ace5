"""Every sample in config/sinks/ is a valid collector config whose sinks can all be built."""

from pathlib import Path

import pytest

from collector.config import load_config
from collector.sinks import SINKS, build_sink

ROOT = Path(__file__).resolve().parents[4]
SAMPLES = sorted((ROOT / "config" / "sinks").glob("*.yaml"))


def test_every_sink_has_a_sample() -> None:
    shown = {options.type for sample in SAMPLES for options in load_config(sample).notify.sinks.values()}
    assert shown == set(SINKS)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_a_sink_sample_config_loads_and_builds(sample: Path) -> None:
    config = load_config(sample)
    assert config.notify.routes
    for options in config.notify.sinks.values():
        build_sink(options).close()


def test_a_route_naming_no_sink_is_refused_with_the_names_there_are(tmp_path: Path) -> None:
    from common.configfile import ConfigError

    path = tmp_path / "collector.yaml"
    path.write_text(
        "notify:\n  sinks:\n    oncall: {type: webhook, url: 'https://x.example/h'}\n"
        "  routes:\n    - sinks: [on-call]\n"
    )
    with pytest.raises(ConfigError, match=r"routes\[0\]: no sink named 'on-call' \(oncall\)"):
        load_config(path)


def test_a_typo_in_a_sink_key_names_the_sink_and_the_key(tmp_path: Path) -> None:
    from common.configfile import ConfigError

    path = tmp_path / "collector.yaml"
    path.write_text(
        "notify:\n  sinks:\n    oncall: {type: email, host: smtp, from: a@b.c, to: [a@b.c], pasword: x}\n"
    )
    with pytest.raises(ConfigError, match=r"notify\.sinks\.oncall\.pasword: unknown key"):
        load_config(path)
