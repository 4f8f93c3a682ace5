"""The commented command-channel block of the agent sample validates once uncommented."""

from pathlib import Path

import pytest

from agent.config import load_config
from common.configfile import ConfigError
from tests.support.diagnostics import key_pair

SAMPLE = Path(__file__).resolve().parents[3] / "config" / "agent.example.yaml"


def uncommented(tmp_path: Path) -> Path:
    _private, public = key_pair(tmp_path / "keys")
    lines = SAMPLE.read_text().splitlines()
    start = lines.index("# commands:")
    block = [line.removeprefix("# ") for line in lines[start:]]
    text = "\n".join(lines[:start] + block).replace("/etc/hezo/collector.key.pub", str(public))
    text = text.replace("/var/lib/hezo-agent", str(tmp_path / "state"))
    text = text.replace(
        "/etc/hezo/ca.pem", str(public)
    )  # any existing file: ca_file is only checked to exist
    out = tmp_path / "agent.yaml"
    out.write_text(text)
    return out


def test_the_sample_commands_block_validates(tmp_path: Path) -> None:
    config = load_config(uncommented(tmp_path))
    assert config.commands is not None
    assert config.commands.logs.redact == ["CUST-[0-9]+"]


def test_a_public_key_that_is_not_ed25519_is_refused_with_its_path(tmp_path: Path) -> None:
    path = uncommented(tmp_path)
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    text = path.read_text().replace(str(tmp_path / "keys" / "collector.key.pub"), str(bad))
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"commands\.public_key: .*not-a-key\.pem is not a PEM public key"):
        load_config(path)
