"""Enrolling, rotating and revoking agents as an operator does it, against the production broker config:
``hezo-collector agents enrol`` on one side, ``hezo-agent enroll`` on the other, the real agent and collector
as processes."""

import json
import secrets
import signal
import ssl
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from collector.broker.acl import acl_key, agent_acls, agent_role
from collector.broker.control import BrokerControl
from collector.config import load_config
from protocol import Topics
from protocol.enrolment import decode_enrolment, encode_enrolment
from tests.support.collector import admin_token, serve
from tests.support.diagnostics import key_pair
from tests.support.mosquitto import free_port, wait_port
from tests.support.securebroker import (
    COLLECTOR_LOGIN,
    BrokerClient,
    SecureBroker,
    collector_config,
    enrol,
    hezo,
    start_secure_broker,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

SITE, AGENT = "test-site", "room-1"


@pytest.fixture
def broker(secure_broker: SecureBroker) -> SecureBroker:
    return secure_broker


@pytest.fixture
def processes() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Processes a test starts, stopped after it (SIGTERM, then SIGKILL)."""
    running: dict[str, subprocess.Popen[bytes]] = {}
    yield running
    for process in reversed(running.values()):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def agent_config(folder: Path, **sections: Any) -> Path:
    """An agent with one MeetUp whose USB functions are missing (so: down), and no broker settings at all:
    where the broker is, the login and the CA all come from its enrolment."""
    config = {
        "site": SITE,
        "agent": AGENT,
        "poll": {"interval": 1, "recheck_count": 0},
        "devices": [
            {"id": "meetup", "model": "meetup", "checks": [{"driver": "usb", "sysfs_root": str(folder)}]}
        ],
        **sections,
    }
    path = folder / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_agent(folder: Path, config: Path) -> subprocess.Popen[bytes]:
    with (folder / "agent.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )


def wait_online(broker: SecureBroker, clients: list[BrokerClient]) -> None:
    """Wait until the agent's birth is at the broker, as the collector's login reads it."""
    probe = BrokerClient(
        broker, f"probe-{secrets.token_hex(3)}", username=COLLECTOR_LOGIN, password=broker.password
    )
    clients.append(probe)
    assert probe.subscribe("hezo/v1/+/+/status")
    eventually(
        "the agent's birth",
        lambda: any(json.loads(payload)["kind"] == "birth" for _, payload in probe.messages),
        timeout=30,
    )


@pytest.fixture
def clients(broker_clients: list[BrokerClient]) -> list[BrokerClient]:
    return broker_clients


def test_an_enrolled_agent_reports_and_runs_a_signed_command(
    broker: SecureBroker, tmp_path: Path, processes: dict[str, subprocess.Popen[bytes]]
) -> None:
    private, _public = key_pair(tmp_path / "keys")
    web = free_port()
    diagnostics = {
        "key_file": str(private),
        "bundle_dir": str(tmp_path / "bundles"),
        "public_url": f"http://127.0.0.1:{web}",
    }
    config = collector_config(tmp_path, broker, web_port=web, diagnostics=diagnostics)
    issued = hezo(
        "collector", tmp_path, "--config", str(config), "agents", "enrol", f"{SITE}/{AGENT}", "--out", "-"
    )
    assert issued.returncode == 0, issued.stderr.decode()
    document = decode_enrolment(issued.stdout)  # piped straight in, as over ssh: never on disk
    assert document.ca == broker.ca_file.read_text()
    agent_yaml = agent_config(tmp_path, commands={"state_dir": str(tmp_path / "commands")})
    taken = hezo("agent", tmp_path, "enroll", "--config", str(agent_yaml), "-", stdin=issued.stdout)
    assert taken.returncode == 0, taken.stderr.decode()
    folder = tmp_path / "agent.yaml.state" / "enrolment"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "broker.json").stat().st_mode) == 0o600
    assert (folder / "collector.pub").exists()

    processes["collector"] = serve(config, tmp_path)
    processes["agent"] = start_agent(tmp_path, agent_yaml)
    wait_port("127.0.0.1", web, timeout=30)
    token = admin_token(str(load_config(config).store.url))
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{web}", timeout=10, headers={"Authorization": f"Bearer {token}"}
    )

    def down() -> Any:
        return [d for d in api.get("/api/devices").json() if d["device"] == "meetup" and d["state"] == "down"]

    eventually("the agent's report of its MeetUp", down, timeout=40)
    sent = api.post(
        "/api/commands",
        json={"action": "service-tests", "device": "meetup", "repeat": 1, "requested_by": "test"},
    )
    assert sent.status_code == 202, sent.text
    status = sent.json()["status"]
    done = eventually(
        "the command done", lambda: (c := api.get(status).json())["status"] == "done" and c, timeout=30
    )
    api.close()
    assert done["result"]["device"] == "meetup"
    # The password is in no log, and in neither the command line nor the environment of the agent.
    agent_pid = processes["agent"].pid
    for where in ("agent.log", "collector.log"):
        assert document.password not in (tmp_path / where).read_text()
    for proc in ("cmdline", "environ"):
        assert document.password.encode() not in Path(f"/proc/{agent_pid}/{proc}").read_bytes()


def test_a_revoked_agent_is_thrown_out_and_refused_from_then_on(
    broker: SecureBroker,
    tmp_path: Path,
    processes: dict[str, subprocess.Popen[bytes]],
    clients: list[BrokerClient],
) -> None:
    config = collector_config(tmp_path, broker)
    document = enrol(tmp_path, config, f"{SITE}/{AGENT}")
    handed = tmp_path / "handed-over.json"
    handed.write_bytes(encode_enrolment(document))
    agent_yaml = agent_config(tmp_path)
    taken = hezo("agent", tmp_path, "enroll", "--config", str(agent_yaml), str(handed))
    assert taken.returncode == 0, taken.stderr.decode()
    assert not handed.exists()  # it held the password: gone once stored
    processes["agent"] = start_agent(tmp_path, agent_yaml)
    wait_online(broker, clients)

    revoked = hezo("collector", tmp_path, "--config", str(config), "agents", "revoke", f"{SITE}/{AGENT}")
    assert revoked.returncode == 0, revoked.stderr.decode()
    log = tmp_path / "agent.log"
    eventually("the agent thrown out", lambda: "lost the broker" in log.read_text(), timeout=20)
    eventually(
        "the agent's next login refused",
        lambda: "refused the connection: Not authorized" in log.read_text(),
        timeout=30,
    )
    again = BrokerClient.of(broker, document)
    clients.append(again)
    assert str(again.reason) == "Not authorized"
    listed = hezo("collector", tmp_path, "--config", str(config), "agents", "enrolled", "--json")
    [row] = json.loads(listed.stdout)
    assert row["revoked_at"] is not None
    assert row["credential"] is None
    trail = json.loads(hezo("collector", tmp_path, "--config", str(config), "audit", "list", "--json").stdout)
    assert [line["event"] for line in reversed(trail)] == [
        "agent-enrolled",
        "credential-issued",
        "agent-revoked",
    ]
    assert document.password not in json.dumps(trail)


def test_rotating_a_login_throws_out_and_refuses_the_old_one(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    first = enrol(tmp_path, config, f"{SITE}/{AGENT}")
    connected = BrokerClient.of(broker, first)
    clients.append(connected)
    assert connected.accepted
    second = enrol(tmp_path, config, f"{SITE}/{AGENT}", action="rotate")
    assert connected.lost.wait(10)
    old = BrokerClient.of(broker, first)
    new = BrokerClient.of(broker, second)
    clients.extend([old, new])
    assert str(old.reason) == "Not authorized"
    assert new.accepted
    listed = hezo("collector", tmp_path, "--config", str(config), "agents", "enrolled", "--json")
    [row] = json.loads(listed.stdout)
    assert row["credential"] == f"sha256:{second.fingerprint[:16]}"


def test_mutual_tls_refuses_a_login_without_a_client_certificate(
    tmp_path: Path, clients: list[BrokerClient]
) -> None:
    broker = start_secure_broker(tmp_path / "broker", mutual=True)
    try:
        config = collector_config(tmp_path, broker)  # the collector shows its own certificate
        document = enrol(tmp_path, config, f"{SITE}/{AGENT}")
        try:
            bare = BrokerClient.of(broker, document)
            clients.append(bare)
            refused = not bare.accepted
        except (ssl.SSLError, OSError):
            refused = True  # the handshake itself failed
        with_certificate = BrokerClient.of(broker, document, certificate=broker.client_certificate("room-1"))
        clients.append(with_certificate)
        assert refused
        assert with_certificate.accepted
    finally:
        broker.stop()


def test_broker_sync_puts_back_rules_and_removes_logins_of_agents_not_enrolled(
    broker: SecureBroker, tmp_path: Path, clients: list[BrokerClient]
) -> None:
    config = collector_config(tmp_path, broker)
    enrol(tmp_path, config, f"{SITE}/{AGENT}")
    settings = load_config(config)
    topics = Topics()
    with BrokerControl(settings.mqtt, 10) as control:  # someone changes the broker by hand
        answers = control.run(
            [
                {
                    "command": "removeRoleACL",
                    "rolename": agent_role(SITE, AGENT),
                    "acltype": "subscribeLiteral",
                    "topic": topics.cmd(SITE, AGENT),
                },
                {
                    "command": "createRole",
                    "rolename": "everything",
                    "acls": [{"acltype": "subscribePattern", "topic": "#", "allow": True}],
                },
                {
                    "command": "createClient",
                    "username": f"{SITE}/ghost",
                    "password": "a-password-nobody-enrolled",
                    "roles": [{"rolename": "everything"}],
                },
                {"command": "addClientRole", "username": f"{SITE}/{AGENT}", "rolename": "everything"},
            ]
        )
        assert [answer.get("error") for answer in answers] == [None, None, None, None]
    synced = hezo("collector", tmp_path, "--config", str(config), "broker", "sync")
    assert synced.returncode == 0, synced.stderr.decode()
    assert f"login {SITE}/ghost removed: not enrolled" in synced.stdout.decode()
    with BrokerControl(settings.mqtt, 10) as control:
        role, login = control.run(
            [
                {"command": "getRole", "rolename": agent_role(SITE, AGENT)},
                {"command": "getClient", "username": f"{SITE}/{AGENT}"},
            ]
        )
    assert [held["rolename"] for held in login["data"]["client"]["roles"]] == [agent_role(SITE, AGENT)]
    held = {acl_key(rule) for rule in role["data"]["role"]["acls"]}
    assert held == {acl_key(rule) for rule in agent_acls(topics, SITE, AGENT)}
    ghost = BrokerClient(broker, "ghost", username=f"{SITE}/ghost", password="a-password-nobody-enrolled")
    clients.append(ghost)
    assert str(ghost.reason) == "Not authorized"


def test_broker_init_writes_the_file_the_broker_starts_with(
    tmp_path: Path, clients: list[BrokerClient]
) -> None:
    password = secrets.token_urlsafe(24)
    config = tmp_path / "collector.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"username": COLLECTOR_LOGIN, "password": password},
                "enrolment": {"broker": "dynamic-security"},
                "store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"},
            }
        )
    )
    out = tmp_path / "dynamic-security.json"
    made = hezo("collector", tmp_path, "--config", str(config), "broker", "init", "--out", str(out))
    assert made.returncode == 0, made.stderr.decode()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert password not in out.read_text()  # only its salted hash
    again = hezo("collector", tmp_path, "--config", str(config), "broker", "init", "--out", str(out))
    assert again.returncode == 1  # never overwritten: it holds every agent's login
    broker = start_secure_broker(tmp_path / "broker", dynsec=out, password=password)
    try:
        collector = BrokerClient(broker, "c", username=COLLECTOR_LOGIN, password=password)
        anonymous = BrokerClient(broker, "anonymous")
        clients.extend([collector, anonymous])
        assert collector.accepted
        assert str(anonymous.reason) == "Not authorized"
    finally:
        broker.stop()


def test_without_broker_logins_enrol_only_records_and_rotate_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"store": {"url": f"sqlite:///{tmp_path / 'collector.db'}"}}))
    enrolled = hezo("collector", tmp_path, "--config", str(config), "agents", "enrol", f"{SITE}/{AGENT}")
    rotated = hezo("collector", tmp_path, "--config", str(config), "agents", "rotate", f"{SITE}/{AGENT}")
    assert enrolled.returncode == 0, enrolled.stderr.decode()
    assert "no broker login made" in enrolled.stdout.decode()
    assert list(tmp_path.glob("enrolment-*")) == []
    assert rotated.returncode == 3
    assert "enrolment.broker: dynamic-security" in rotated.stderr.decode()


def test_with_the_broker_out_of_reach_nothing_changes(broker: SecureBroker, tmp_path: Path) -> None:
    config = collector_config(tmp_path, broker)
    enrol(tmp_path, config, f"{SITE}/{AGENT}")
    broker.stop()
    revoked = hezo("collector", tmp_path, "--config", str(config), "agents", "revoke", f"{SITE}/{AGENT}")
    enrolled = hezo("collector", tmp_path, "--config", str(config), "agents", "enrol", f"{SITE}/other")
    assert revoked.returncode == 1
    assert f"cannot reach the broker 127.0.0.1:{broker.port}" in revoked.stderr.decode()
    assert "nothing was changed" in revoked.stderr.decode()
    assert enrolled.returncode == 1
    assert list(tmp_path.glob("enrolment-*other*")) == []  # no document of a login that was never made
    listed = json.loads(
        hezo("collector", tmp_path, "--config", str(config), "agents", "enrolled", "--json").stdout
    )
    assert [(row["agent"], row["revoked_at"]) for row in listed] == [(AGENT, None)]
