"""The collector's command side: keys, signed and audited commands, replies, uploads, automatic evidence."""

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select

from collector import audit
from collector.config import CollectorConfig
from collector.errors import ConflictError
from collector.remote import history
from collector.remote.commander import Commander
from collector.remote.evidence import Evidence
from collector.remote.keys import keygen, load_private_key
from collector.remote.replies import Replies
from collector.remote.retention import Retention
from collector.remote.uploads import UploadProblem, Uploads
from collector.store.schema import agents, bundles, devices, ticket_entries
from common.configfile import ConfigError
from diagnostics.bundle import BundleBuilder, file_sha256
from protocol import Envelope
from protocol.commands import decode_signed
from tests.support.collector import T0, Clock, boot_id


def make(
    engine: Engine, tmp_path: Path, sent: list[tuple[str, bytes]], clock: Clock, **settings: Any
) -> Commander:
    """A commander with a key of its own that records what it publishes in ``sent``; ``settings`` go to
    ``diagnostics:``."""
    key = tmp_path / "keys" / "collector.key"
    key.parent.mkdir()
    keygen(key)
    config = CollectorConfig.model_validate(
        {"diagnostics": {"key_file": str(key), "bundle_dir": str(tmp_path / "bundles"), **settings}}
    )
    return Commander(engine, config, publish=lambda topic, payload: sent.append((topic, payload)), now=clock)


def online_device(engine: Engine, device: str = "rally-bar", contract: str | None = None) -> None:
    with engine.begin() as conn:
        if conn.execute(select(agents.c.agent)).first() is None:
            conn.execute(insert(agents).values(site="hq", agent="room-1", online=True))
        values = {"site": "hq", "agent": "room-1", "device": device, "state": "up", "contract": contract}
        conn.execute(insert(devices).values(**values))


@pytest.fixture
def sent() -> list[tuple[str, bytes]]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def commander(engine: Engine, tmp_path: Path, sent: list[tuple[str, bytes]], clock: Clock) -> Commander:
    with engine.begin() as conn:
        conn.execute(insert(agents).values(site="hq", agent="room-1", online=True))
        conn.execute(insert(devices).values(site="hq", agent="room-1", device="rally-bar", state="up"))
    return make(engine, tmp_path, sent, clock)


def status_of(commander: Commander, command_id: str) -> str:
    """The command's status as the API reads it back."""
    found = history.get_command(commander.engine, command_id, commander.now())
    assert found is not None
    return str(found["status"])


def answer(commander: Commander, envelope: Envelope, received_at: datetime) -> None:
    """What ingest does with a stored reply."""
    Replies(commander.engine).handle(envelope, received_at)


def audit_events(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [row["event"] for row in reversed(audit.list_audit(conn))]


def test_keygen_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    public = keygen(tmp_path / "c.key")
    assert (tmp_path / "c.key").stat().st_mode & 0o777 == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_a_signing_key_readable_by_others_is_refused_at_start(tmp_path: Path) -> None:
    keygen(tmp_path / "c.key")
    os.chmod(tmp_path / "c.key", 0o644)
    with pytest.raises(ConfigError, match="mode 0644 lets others read the signing key; chmod 600"):
        load_private_key(tmp_path / "c.key")


def test_a_request_is_signed_published_stored_and_audited(
    commander: Commander, sent: list[tuple[str, bytes]], engine: Engine
) -> None:
    command_id = commander.request("hq", "room-1", "service-tests", device="rally-bar", requested_by="cli")
    topic, payload = sent[0]
    assert topic == "hezo/v1/hq/room-1/cmd"
    command, _signature = decode_signed(payload)
    assert (command.id, command.action, command.args) == (
        command_id,
        "service-tests",
        {"device": "rally-bar"},
    )
    assert status_of(commander, command_id) == "sent"
    assert audit_events(engine) == ["issued"]


def test_a_request_to_an_offline_agent_is_not_sent_but_audited(
    commander: Commander, sent: list[tuple[str, bytes]], engine: Engine
) -> None:
    with engine.begin() as conn:
        conn.execute(agents.update().values(online=False))
    with pytest.raises(ConflictError, match="offline"):
        commander.request("hq", "room-1", "republish-state")
    assert sent == []
    assert audit_events(engine) == ["not-sent"]


def reply(body: dict[str, Any], seq: int = 1) -> Envelope:
    return Envelope("hq", "room-1", boot_id(1), seq, "2026-11-24T21:00:01.000Z", "reply", body)


def test_a_refusal_is_stored_with_its_reason_and_audited(commander: Commander, engine: Engine) -> None:
    command_id = commander.request("hq", "room-1", "republish-state")
    body = {"command": command_id, "status": "refused", "reason": "replayed", "message": "seen already"}
    answer(commander, reply(body), T0)
    assert status_of(commander, command_id) == "refused"
    with engine.connect() as conn:
        last = audit.list_audit(conn)[0]
    assert (last["event"], last["detail"]) == ("refused", "replayed: seen already")


def test_a_second_delivery_refused_as_replayed_does_not_undo_the_running_command(
    commander: Commander, engine: Engine
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs")
    answer(commander, reply({"command": command_id, "status": "accepted"}, seq=1), T0)
    again = {"command": command_id, "status": "refused", "reason": "replayed", "message": "seen already"}
    answer(commander, reply(again, seq=2), T0)
    assert status_of(commander, command_id) == "accepted"
    answer(commander, reply({"command": command_id, "status": "done", "result": {}}, seq=3), T0)
    assert status_of(commander, command_id) == "done"
    assert {"refused", "done"} <= set(audit_events(engine))  # both on record


def test_a_refusal_of_a_command_we_never_sent_is_audited(commander: Commander, engine: Engine) -> None:
    answer(commander, reply({"command": "-", "status": "refused", "reason": "bad-signature"}), T0)
    assert audit_events(engine) == ["refused-unknown"]


def _bundle(tmp_path: Path) -> Path:
    builder = BundleBuilder({"site": "hq"})
    builder.add_bytes("agent/agent.log", os.urandom(300_000), source="test")
    out = tmp_path / "b.tar.gz"
    builder.write(out)
    return out


async def _chunks(data: bytes, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 65536):
        if fail_after is not None and start >= fail_after:
            raise ConnectionResetError("cut")
        yield data[start : start + 65536]


def test_an_upload_broken_half_way_resumes_from_the_stored_offset(
    commander: Commander, tmp_path: Path, sent: list[tuple[str, bytes]], engine: Engine
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    token = decode_signed(sent[0][1])[0].args["upload_token"]
    auth = f"Bearer {token}"
    path = _bundle(tmp_path)
    data = path.read_bytes()
    digest = file_sha256(path)
    uploads = Uploads(commander)
    with pytest.raises(ConnectionResetError):
        asyncio.run(uploads.append(command_id, auth, 0, len(data), digest, _chunks(data, 131072)))
    held, stored = uploads.offset(command_id, auth)
    assert (held, stored) == (131072, None)
    done = asyncio.run(uploads.append(command_id, auth, held, len(data), digest, _chunks(data[held:])))
    assert isinstance(done, dict)
    assert done["sha256"] == digest
    with engine.connect() as conn:
        row = conn.execute(select(bundles)).one()
    assert Path(row.path).read_bytes() == data


def test_an_upload_with_the_wrong_token_is_refused(commander: Commander) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    uploads = Uploads(commander)
    with pytest.raises(UploadProblem) as caught:
        uploads.offset(command_id, "Bearer guessed")
    assert caught.value.status == 403


def test_an_upload_whose_checksum_differs_is_refused_and_audited(
    commander: Commander, tmp_path: Path, sent: list[tuple[str, bytes]], engine: Engine
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    auth = "Bearer " + decode_signed(sent[0][1])[0].args["upload_token"]
    data = _bundle(tmp_path).read_bytes()
    with pytest.raises(UploadProblem) as caught:
        asyncio.run(Uploads(commander).append(command_id, auth, 0, len(data), "0" * 64, _chunks(data)))
    assert caught.value.status == 422
    assert audit_events(engine)[-1] == "bundle-refused"


def test_a_new_critical_ticket_gets_service_tests_and_logs_requested(
    commander: Commander, sent: list[tuple[str, bytes]], engine: Engine, clock: Clock
) -> None:
    from collector import tickets

    with engine.begin() as conn:
        number = tickets.open_ticket(
            conn,
            tickets.Subject("hq", "room-1", "rally-bar"),
            priority="critical",
            cause="device-down",
            opened_at=T0,
            response_due=T0,
            evidence=None,
            text="down",
        )
    Evidence(commander).on_ticket_opened(number)
    actions = [decode_signed(payload)[0].action for _topic, payload in sent]
    assert actions == ["service-tests", "collect-logs"]
    tests_id = decode_signed(sent[0][1])[0].id
    result = {
        "ok": False,
        "checks": [
            {
                "driver": "https",
                "target": "https://x/",
                "runs": 5,
                "failed": 5,
                "loss_pct": 100.0,
                "last": {"detail": "connection refused"},
            }
        ],
    }
    answer(commander, reply({"command": tests_id, "status": "done", "result": result}), T0)
    with engine.connect() as conn:
        kinds = [row.kind for row in conn.execute(select(ticket_entries.c.kind))]
    assert kinds == ["opened", "service-tests"]


def test_request_republish_sends_republish_state(commander: Commander, sent: list[tuple[str, bytes]]) -> None:
    command_id = commander.request_republish("hq", "room-1")
    command = decode_signed(sent[0][1])[0]
    assert (command.id, command.action) == (command_id, "republish-state")


def test_request_republish_to_an_offline_agent_returns_none(commander: Commander, engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(agents.update().values(online=False))
    assert commander.request_republish("hq", "room-1") is None


def test_bundles_past_their_retention_are_deleted_with_their_files(
    commander: Commander, tmp_path: Path, sent: list[tuple[str, bytes]], engine: Engine, clock: Clock
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    auth = "Bearer " + decode_signed(sent[0][1])[0].args["upload_token"]
    path = _bundle(tmp_path)
    data = path.read_bytes()
    asyncio.run(Uploads(commander).append(command_id, auth, 0, len(data), file_sha256(path), _chunks(data)))
    with engine.connect() as conn:
        stored = Path(conn.execute(select(bundles.c.path)).scalar_one())
    clock.advance(29 * 86400)
    assert Retention(commander.engine, commander.settings, now=commander.now).cleanup() == 0
    clock.advance(2 * 86400)
    assert Retention(commander.engine, commander.settings, now=commander.now).cleanup() == 1
    assert not stored.exists()
    assert audit_events(engine)[-1] == "bundle-deleted"


def test_a_spent_upload_token_cannot_upload_again(
    commander: Commander, tmp_path: Path, sent: list[tuple[str, bytes]]
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    auth = "Bearer " + decode_signed(sent[0][1])[0].args["upload_token"]
    path = _bundle(tmp_path)
    data = path.read_bytes()
    uploads = Uploads(commander)
    asyncio.run(uploads.append(command_id, auth, 0, len(data), file_sha256(path), _chunks(data)))
    with pytest.raises(UploadProblem) as caught:
        asyncio.run(uploads.append(command_id, auth, 0, len(data), file_sha256(path), _chunks(data)))
    assert caught.value.status == 410


def test_a_finished_upload_still_tells_its_offset_and_bundle(
    commander: Commander, tmp_path: Path, sent: list[tuple[str, bytes]]
) -> None:
    command_id = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    auth = "Bearer " + decode_signed(sent[0][1])[0].args["upload_token"]
    path = _bundle(tmp_path)
    data = path.read_bytes()
    uploads = Uploads(commander)
    done = asyncio.run(uploads.append(command_id, auth, 0, len(data), file_sha256(path), _chunks(data)))
    assert uploads.offset(command_id, auth) == (len(data), done)


def test_unfinished_uploads_cannot_take_more_disk_than_their_share(
    engine: Engine, tmp_path: Path, sent: list[tuple[str, bytes]], clock: Clock
) -> None:
    online_device(engine)
    commander = make(engine, tmp_path, sent, clock, max_partial_bytes=1_000_000)
    uploads = Uploads(commander)
    first = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    second = commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    tokens = [decode_signed(payload)[0].args["upload_token"] for _topic, payload in sent]
    started = asyncio.run(
        uploads.append(first, f"Bearer {tokens[0]}", 0, 600_000, "a" * 64, _chunks(b"x" * 1000))
    )
    assert started == 1000
    with pytest.raises(UploadProblem) as caught:
        asyncio.run(uploads.append(second, f"Bearer {tokens[1]}", 0, 600_000, "b" * 64, _chunks(b"y")))
    assert caught.value.status == 507
    assert "hold 600000 of 1000000 bytes" in caught.value.reason


def test_commands_to_one_device_and_by_one_person_are_limited(commander: Commander, clock: Clock) -> None:
    from collector.errors import TooManyError

    for _ in range(commander.settings.max_commands_per_device):
        commander.request("hq", "room-1", "service-tests", device="rally-bar", requested_by="eve")
    with pytest.raises(TooManyError, match="commands to hq/room-1/rally-bar in the last 600 s"):
        commander.request("hq", "room-1", "service-tests", device="rally-bar", requested_by="mallory")
    assert commander.request_republish("hq", "room-1") is not None  # the collector's own are not counted
    clock.advance(commander.settings.command_window + 1)
    commander.request("hq", "room-1", "service-tests", device="rally-bar", requested_by="mallory")


def test_a_log_request_carries_the_customers_choice_for_personal_data(
    engine: Engine, tmp_path: Path, sent: list[tuple[str, bytes]], clock: Clock
) -> None:
    from collector.store.schema import contracts

    online_device(engine, "rally-bar", "C-ACME")
    online_device(engine, "tap")
    with engine.begin() as conn:
        values = {"number": "C-ACME", "start": T0.date(), "years": 3, "customer": "ACME", "source": "api"}
        conn.execute(insert(contracts).values(**values))
    commander = make(
        engine, tmp_path, sent, clock, personal_data={"default": "mask", "customers": {"ACME": "drop"}}
    )
    commander.request("hq", "room-1", "collect-logs", device="rally-bar")
    commander.request("hq", "room-1", "collect-logs", device="tap")
    modes = [decode_signed(payload)[0].args["personal_data"] for _topic, payload in sent]
    assert modes == ["drop", "mask"]
