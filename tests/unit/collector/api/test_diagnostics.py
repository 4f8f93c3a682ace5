"""The diagnostics page and API: buttons per device, commands and the audit log as JSON, CLI audit list."""

import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import Engine, insert

from collector.api.app import create_app
from collector.cli.main import main
from collector.config import CollectorConfig
from collector.errors import ConflictError
from collector.remote.commander import Commander
from collector.remote.keys import keygen
from collector.store.schema import agents, devices
from tests.support.collector import AppClient, migrated_engine


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> AppClient:
    keygen(tmp_path / "c.key")
    config = CollectorConfig.model_validate({"diagnostics": {"key_file": str(tmp_path / "c.key")}})
    with engine.begin() as conn:
        conn.execute(insert(agents).values(site="hq", agent="room-1", online=True))
        conn.execute(insert(devices).values(site="hq", agent="room-1", device="rally-bar", state="down"))
    commander = Commander(engine, config, publish=lambda _t, _p: None)
    commander.request("hq", "room-1", "service-tests", device="rally-bar", requested_by="web")
    return AppClient(create_app(engine, diagnostics=commander))


def test_the_page_has_test_and_log_buttons_for_each_device(client: AppClient) -> None:
    page = client.get("/diagnostics").text
    assert 'data-device="hq/room-1/rally-bar"' in page
    assert 'data-action="service-tests"' in page
    assert 'data-action="collect-logs"' in page


def test_commands_are_listed_with_status_and_without_their_upload_token(client: AppClient) -> None:
    [command] = client.get("/api/commands").json()
    assert (command["action"], command["status"], command["requested_by"]) == ("service-tests", "sent", "web")
    assert "upload_token_sha256" not in command


def test_the_audit_log_records_the_issued_command(client: AppClient) -> None:
    [line] = [line for line in client.get("/api/audit").json() if line["event"] == "issued"]
    assert (line["event"], line["actor"], line["action"]) == ("issued", "web", "service-tests")


def test_an_unknown_bundle_is_a_404_with_a_reason(client: AppClient) -> None:
    answer = client.get("/api/bundles/42/download")
    assert answer.status_code == 404
    assert answer.json()["detail"] == "no bundle 42"


def test_cli_audit_list_prints_the_log_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The command opens the store by its URL, so the database is a file of the test's own.
    engine = migrated_engine(tmp_path)
    keygen(tmp_path / "c.key")
    url = str(engine.url)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump({"store": {"url": url}}))
    with engine.begin() as conn:
        conn.execute(insert(agents).values(site="hq", agent="room-1", online=False))
    config = CollectorConfig.model_validate({"diagnostics": {"key_file": str(tmp_path / "c.key")}})
    commander = Commander(engine, config, publish=lambda _t, _p: None)
    with pytest.raises(ConflictError, match="offline"):
        commander.request("hq", "room-1", "republish-state", requested_by="cli")
    assert main(["--config", str(tmp_path / "c.yaml"), "audit", "list", "--json"]) == 0
    [line] = json.loads(capsys.readouterr().out)
    assert (line["event"], line["detail"]) == ("not-sent", "agent offline")


@pytest.fixture
def stored(engine: Engine, tmp_path: Path) -> AppClient:
    """An app with one stored bundle (id 1) holding ``agent/agent.log``."""
    from datetime import UTC, datetime

    from collector.store.schema import bundles
    from diagnostics.bundle import BundleBuilder

    builder = BundleBuilder({"site": "hq"})
    builder.add_bytes("agent/agent.log", b"started\n", source="test")
    path = tmp_path / "b.tar.gz"
    manifest = builder.write(path)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(bundles).values(
                command_id="cmd-1",
                site="hq",
                agent="room-1",
                device="rally-bar",
                path=str(path),
                size=1,
                sha256="0" * 64,
                manifest=manifest,
                created_at=now,
                expires_at=now,
            )
        )
    commander = Commander(engine, CollectorConfig(), publish=lambda _t, _p: None)
    return AppClient(create_app(engine, diagnostics=commander))


def test_a_bundle_member_can_be_read_as_text(stored: AppClient) -> None:
    answer = stored.get("/api/bundles/1/files/agent/agent.log")
    assert (answer.status_code, answer.text) == (200, "started\n")


def test_reading_a_bundle_member_outside_its_folder_is_refused(stored: AppClient) -> None:
    answer = stored.get("/api/bundles/1/files/agent/..%2F..%2Fetc%2Fpasswd")
    assert answer.status_code == 400
    assert "refused" in answer.json()["detail"]


@pytest.mark.parametrize("action", ["report-config", "republish-state"])
def test_an_agent_wide_command_names_the_agent(client: AppClient, action: str) -> None:
    sent = client.request("POST", "/api/commands", {"action": action, "agent": "hq/room-1"})
    assert sent.status_code == 202, sent.text
    command = client.get(sent.json()["status"]).json()
    assert (command["site"], command["agent"], command["device"]) == ("hq", "room-1", None)
    assert command["requested_by"] == "test-admin"


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"action": "report-config", "device": "rally-bar"}, 422, "name it as agent SITE/AGENT"),
        ({"action": "service-tests", "agent": "hq/room-1"}, 422, "name it as device"),
        ({"action": "republish-state", "agent": "hq/nobody"}, 404, "no agent 'hq/nobody'"),
        ({"action": "republish-state", "agent": "hq"}, 422, "at least 3"),
        ({"action": "reboot", "device": "rally-bar"}, 422, "service-tests"),
    ],
)
def test_a_command_aimed_wrongly_is_refused_with_the_reason(
    client: AppClient, body: dict[str, str], status: int, reason: str
) -> None:
    answer = client.request("POST", "/api/commands", body)
    assert answer.status_code == status, answer.text
    assert reason in json.dumps(answer.json()["detail"])


def test_the_body_cannot_say_who_asked(client: AppClient) -> None:
    body = {"action": "service-tests", "device": "rally-bar", "requested_by": "somebody-else"}
    sent = client.request("POST", "/api/commands", body)
    assert client.get(sent.json()["status"]).json()["requested_by"] == "test-admin"
