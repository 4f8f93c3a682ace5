"""The agent's enrolment: kept with tight modes in its state directory, and what the agent logs in with."""

import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import enrolment
from agent.commands import mask_config
from agent.config import load_config
from agent.errors import AgentConfigError
from agent.main import main
from protocol.enrolment import Enrolment, encode_enrolment
from tests.support.tlscert import make_cert

PASSWORD = "an-agent-password-of-enough-length"
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def document(tmp_path: Path, **changes: object) -> Enrolment:
    public = Ed25519PrivateKey.generate().public_key()
    key = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    ca = make_cert(tmp_path, valid_from=timedelta(days=-1), valid_until=timedelta(days=365), name="ca")
    made = Enrolment(
        site="acme",
        agent="room-101",
        host="broker.example.net",
        port=8883,
        prefix="hezo/v1",
        client_id="hezo-agent/acme/room-101",
        username="acme/room-101",
        password=PASSWORD,
        ca=ca.cert.read_text(),
        command_key=key.decode(),
        issued_at="2026-12-04T09:00:00.000Z",
        issued_by="local:root",
    )
    return replace(made, **changes)


def agent_yaml(tmp_path: Path, **sections: object) -> Path:
    config = {
        "site": "acme",
        "agent": "room-101",
        "state_dir": str(tmp_path / "state"),
        "devices": [{"id": "rally-bar-1", "model": "rally-bar", "address": "192.0.2.10"}],
        **sections,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_login_is_kept_0600_in_a_0700_folder_and_the_public_parts_0644(tmp_path: Path) -> None:
    stored = enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    folder = tmp_path / "state" / "enrolment"
    assert mode(folder) == 0o700
    assert mode(folder / "broker.json") == 0o600
    assert mode(folder / "broker-ca.pem") == 0o644
    assert mode(folder / "collector.pub") == 0o644
    assert (stored.username, stored.password, stored.client_id) == (
        "acme/room-101",
        PASSWORD,
        "hezo-agent/acme/room-101",
    )
    assert list(folder.glob(".*")) == []  # no temporary file left behind


def test_enrolling_again_replaces_everything_including_what_the_new_one_lacks(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    stored = enrolment.store(document(tmp_path, ca=None, password="x" * 32), tmp_path / "state", now=NOW)
    assert stored.password == "x" * 32
    assert stored.ca_file is None
    assert not (tmp_path / "state" / "enrolment" / "broker-ca.pem").exists()


def test_a_login_file_others_may_read_is_refused(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    (tmp_path / "state" / "enrolment" / "broker.json").chmod(0o644)
    with pytest.raises(
        enrolment.EnrolmentError, match="mode 0644 lets others read the broker login; chmod 600"
    ):
        enrolment.load(tmp_path / "state")


def test_an_enrolled_agent_logs_in_as_its_enrolment_says(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    config = load_config(agent_yaml(tmp_path, commands={"state_dir": str(tmp_path / "commands")}))
    mqtt = config.mqtt
    assert (mqtt.host, mqtt.port, mqtt.prefix, config.client_id) == (
        "broker.example.net",
        8883,
        "hezo/v1",
        "hezo-agent/acme/room-101",
    )
    assert mqtt.username == "acme/room-101"
    assert mqtt.password is not None
    assert mqtt.password.get_secret_value() == PASSWORD
    assert mqtt.tls is not None
    assert mqtt.tls.ca_file == tmp_path / "state" / "enrolment" / "broker-ca.pem"
    assert config.commands is not None
    assert config.commands.public_key == tmp_path / "state" / "enrolment" / "collector.pub"


def test_the_config_an_enrolled_agent_reports_masks_its_password(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    reported = mask_config(load_config(agent_yaml(tmp_path)))
    assert reported["mqtt"]["username"] == "acme/room-101"
    assert PASSWORD not in str(reported)


def test_a_broker_address_in_the_file_wins_over_the_enrolments(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    config = load_config(agent_yaml(tmp_path, mqtt={"host": "10.0.0.5"}))
    assert (config.mqtt.host, config.mqtt.port) == ("10.0.0.5", 8883)


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ({"username": "someone"}, r"mqtt\.username: remove it, the enrolment holds the broker login"),
        ({"client_id": "mine"}, r"mqtt\.client_id: the broker allows only 'hezo-agent/acme/room-101'"),
    ],
)
def test_a_login_in_the_file_beside_the_enrolment_is_refused(
    tmp_path: Path, mqtt: dict[str, str], message: str
) -> None:
    enrolment.store(document(tmp_path), tmp_path / "state", now=NOW)
    with pytest.raises(AgentConfigError, match=message):
        load_config(agent_yaml(tmp_path, mqtt=mqtt))


def test_an_enrolment_of_another_agent_is_refused(tmp_path: Path) -> None:
    enrolment.store(document(tmp_path, agent="room-102"), tmp_path / "state", now=NOW)
    with pytest.raises(AgentConfigError, match="as acme/room-102, but the file says acme/room-101"):
        load_config(agent_yaml(tmp_path))


def test_commands_without_a_key_need_an_enrolment(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match=r"commands\.public_key: required key is missing \(or enrol"):
        load_config(agent_yaml(tmp_path, commands={"state_dir": str(tmp_path / "commands")}))


def test_enroll_stores_the_document_and_deletes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handed = tmp_path / "enrolment.json"
    handed.write_bytes(encode_enrolment(document(tmp_path)))
    assert main(["enroll", "--config", str(agent_yaml(tmp_path)), str(handed)]) == 0
    assert not handed.exists()
    out = capsys.readouterr().out
    assert "agent acme/room-101 enrolled: broker login acme/room-101 at broker.example.net:8883" in out
    assert PASSWORD not in out


def test_enroll_refuses_a_document_for_another_agent_and_keeps_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handed = tmp_path / "enrolment.json"
    handed.write_bytes(encode_enrolment(document(tmp_path, site="other", username="other/room-101")))
    assert main(["enroll", "--config", str(agent_yaml(tmp_path)), str(handed)]) == 2
    assert "enrols other/room-101, but" in capsys.readouterr().err
    assert handed.exists()
    assert not (tmp_path / "state").exists()


def test_enroll_says_what_is_wrong_with_a_damaged_document(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    handed = tmp_path / "enrolment.json"
    handed.write_bytes(encode_enrolment(document(tmp_path)).replace(b'"port": 8883', b'"port": "8883"'))
    assert main(["enroll", "--config", str(agent_yaml(tmp_path)), str(handed)]) == 2
    err = capsys.readouterr().err
    assert "hezo-agent: cannot enrol: " in err
    assert "'broker.port' must be an integer" in err
    assert PASSWORD not in err
