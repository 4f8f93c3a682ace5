"""The agent refuses every command it must not run, says why, and runs allow-listed ones."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.commands import CommandHandler
from agent.config import AgentConfig
from tests.support.diagnostics import key_pair, load_key, signed


def config(tmp_path: Path, public_key: Path) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "site": "test-site",
            "agent": "room-1",
            "mqtt": {"password": "broker-secret"},
            "devices": [
                {
                    "id": "rally-bar",
                    "model": "rally-bar",
                    "checks": [{"driver": "https", "url": "https://127.0.0.1:9/", "timeout": 1}],
                }
            ],
            "commands": {"public_key": str(public_key), "state_dir": str(tmp_path / "state")},
        }
    )


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        private, public = key_pair(tmp_path / "keys")
        self.key = load_key(private)
        self.config = config(tmp_path, public)
        self.replies: list[dict[str, Any]] = []
        self.handler = self.new_handler()

    def new_handler(self) -> CommandHandler:
        return CommandHandler(self.config, self.replies.append, lambda: 2)

    def send(self, payload: bytes, handler: CommandHandler | None = None) -> list[dict[str, Any]]:
        """The replies once the command was handled to its end (refused, done or failed)."""
        chosen = handler or self.handler

        async def go() -> None:
            before = chosen.handled
            chosen.handle(payload)
            await until_handled(chosen, before + 1)

        asyncio.run(go())
        return self.replies


async def until_handled(handler: CommandHandler, count: int) -> None:
    """Wait until ``handler`` has handled ``count`` commands to their end; fail after 10 s."""
    async with asyncio.timeout(10):
        while handler.handled < count:
            await asyncio.sleep(0.01)


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def refusal(replies: list[dict[str, Any]]) -> str:
    final = replies[-1]
    assert final["status"] == "refused", final
    return str(final["reason"])


def test_a_command_signed_with_another_key_is_refused(harness: Harness, tmp_path: Path) -> None:
    other, _ = key_pair(tmp_path / "other")
    assert refusal(harness.send(signed(load_key(other)))) == "bad-signature"


def test_a_command_whose_fields_were_changed_after_signing_is_refused(harness: Harness) -> None:
    doc = json.loads(signed(harness.key))
    doc["command"]["action"] = "republish-state"
    assert refusal(harness.send(json.dumps(doc).encode())) == "bad-signature"


def test_an_expired_command_is_refused(harness: Harness) -> None:
    issued = datetime.now(UTC) - timedelta(minutes=10)
    assert refusal(harness.send(signed(harness.key, issued=issued, lifetime=60))) == "expired"


def test_a_command_from_the_future_is_refused(harness: Harness) -> None:
    issued = datetime.now(UTC) + timedelta(hours=1)
    assert refusal(harness.send(signed(harness.key, issued=issued))) == "not-yet-valid"


def test_a_command_valid_for_too_long_is_refused(harness: Harness) -> None:
    assert refusal(harness.send(signed(harness.key, lifetime=7 * 86400))) == "too-long"


def test_a_replayed_command_is_refused(harness: Harness) -> None:
    payload = signed(harness.key)
    assert harness.send(payload)[-1]["status"] == "done"
    harness.replies.clear()
    assert refusal(harness.send(payload)) == "replayed"


def test_a_command_replayed_after_a_restart_is_refused(harness: Harness) -> None:
    payload = signed(harness.key)
    assert harness.send(payload)[-1]["status"] == "done"
    harness.handler.close()
    harness.replies.clear()
    assert refusal(harness.send(payload, harness.new_handler())) == "replayed"


def test_an_action_off_the_allow_list_is_refused(harness: Harness) -> None:
    payload = signed(harness.key, action="shell", args={"cmd": "id"})
    assert refusal(harness.send(payload)) == "not-allowed"


def test_a_command_for_another_agent_is_refused(harness: Harness) -> None:
    assert refusal(harness.send(signed(harness.key, agent="room-2"))) == "wrong-agent"


def test_garbage_is_refused_as_malformed(harness: Harness) -> None:
    replies = harness.send(b"not json")
    assert refusal(replies) == "malformed"
    assert replies[-1]["command"] == "-"


def test_report_config_masks_the_broker_password(harness: Harness) -> None:
    replies = harness.send(signed(harness.key))
    final = replies[-1]
    assert final["status"] == "done"
    assert "broker-secret" not in json.dumps(final)
    assert final["result"]["config"]["mqtt"]["password"] == "**********"


def test_republish_state_answers_how_many_states_were_sent(harness: Harness) -> None:
    replies = harness.send(signed(harness.key, action="republish-state"))
    assert replies[0]["status"] == "accepted"
    assert replies[-1]["result"] == {"states": 2}


def test_an_unusable_state_dir_is_a_config_error_naming_it(tmp_path: Path) -> None:
    from common.configfile import ConfigError

    _private, public = key_pair(tmp_path / "keys")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    settings = config(tmp_path, public)
    assert settings.commands is not None
    settings.commands.state_dir = blocker / "state"
    with pytest.raises(ConfigError, match=r"commands\.state_dir: cannot keep seen command ids"):
        CommandHandler(settings, lambda _body: None, lambda: 0)


def test_a_command_running_when_the_agent_stops_is_cancelled_and_sends_nothing_more(harness: Harness) -> None:
    # Service tests of a device that never answers take seconds; the agent stops meanwhile.
    payload = signed(harness.key, action="service-tests", args={"device": harness.config.devices[0].id})

    async def go() -> None:
        harness.handler.handle(payload)
        await harness.handler.cancel_running()
        await until_handled(harness.handler, 1)

    asyncio.run(go())
    assert [r["status"] for r in harness.replies] == ["accepted"]
    assert harness.handler.outcomes == {"cancelled": 1}
