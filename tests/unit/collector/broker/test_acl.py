"""The broker's rules as hezo makes them: each agent its own topics, the collector what agents publish."""

import base64

from collector.broker import acl
from protocol import Topics

TOPICS = Topics()


def rules(acls: list[acl.Acl], kind: str) -> list[str]:
    return [rule["topic"] for rule in acls if rule["acltype"] == kind and rule["allow"]]


def test_an_agent_publishes_only_under_its_own_topics_and_reads_only_its_cmd() -> None:
    acls = acl.agent_acls(TOPICS, "acme", "room-101")
    assert rules(acls, "publishClientSend") == [
        "hezo/v1/acme/room-101/status",
        "hezo/v1/acme/room-101/device/+/state",
        "hezo/v1/acme/room-101/telemetry",
        "hezo/v1/acme/room-101/event",
        "hezo/v1/acme/room-101/reply",
    ]
    assert rules(acls, "subscribeLiteral") == ["hezo/v1/acme/room-101/cmd"]
    assert rules(acls, "publishClientReceive") == ["hezo/v1/acme/room-101/cmd"]
    assert {rule["acltype"] for rule in acls} == {
        "publishClientSend",
        "subscribeLiteral",
        "publishClientReceive",
    }


def test_the_collector_reads_what_agents_publish_and_sends_commands_without_reading_them() -> None:
    acls = acl.collector_acls(TOPICS)
    assert rules(acls, "subscribeLiteral") == TOPICS.collector_filters()
    assert rules(acls, "publishClientReceive") == TOPICS.collector_filters()
    assert rules(acls, "publishClientSend") == ["hezo/v1/+/+/cmd"]
    assert not any(topic.endswith("/cmd") for topic in rules(acls, "subscribeLiteral"))


def test_names_of_two_agents_never_meet_even_when_their_ids_run_together() -> None:
    one, other = ("a-b", "c"), ("a", "b-c")
    assert acl.agent_username(*one) != acl.agent_username(*other)
    assert acl.agent_client_id(*one) != acl.agent_client_id(*other)
    assert acl.agent_of_name(acl.agent_role(*one), acl.AGENT_ROLE_PREFIX) == one
    assert acl.agent_of_name("hezo-collector") is None


def test_the_password_hash_is_the_one_mosquitto_ctrl_writes() -> None:
    # From `mosquitto_ctrl dynsec init` (Mosquitto 2.0.11) for the password "adminpw".
    salt = base64.b64decode("rqiv75usO6srObK4")
    written = "PXMS49tkSJK2O/usnTdw6epnGKfDBmoh31nRFMbwj16sB+i8Zc8Bq7BgGmvi5LKbaJpuw5cq5OopBhpvcde9YA=="
    assert acl.hash_password("adminpw", salt, 101) == written


def test_the_first_file_closes_everything_and_keeps_no_password() -> None:
    document = acl.plugin_config(TOPICS, "hezo-collector", "the-collector-password", rounds=1000)
    assert document["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    [client] = document["clients"]
    assert {role["rolename"] for role in client["roles"]} == {acl.COLLECTOR_ROLE, acl.ADMIN_ROLE}
    assert "the-collector-password" not in str(document)
    salt = base64.b64decode(client["salt"])
    assert client["password"] == acl.hash_password("the-collector-password", salt, 1000)
