"""The command format: signed bytes are canonical, bad commands say what is wrong."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from protocol import MalformedMessageError
from protocol.commands import (
    Command,
    canonical,
    check_args,
    decode_signed,
    encode_signed,
    new_command,
    parse_since,
)

NOW = datetime(2026, 11, 24, 21, 0, tzinfo=UTC)


def command(**changes: object) -> Command:
    fields = {
        "id": "cmd-00000001",
        "site": "hq",
        "agent": "room-1",
        "action": "service-tests",
        "issued_at": "2026-11-24T21:00:00.000Z",
        "expires_at": "2026-11-24T21:10:00.000Z",
        "args": {"device": "rally-bar", "repeat": 3},
    }
    fields.update(changes)
    return Command(**fields)  # type: ignore[arg-type]


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    one = command(args={"device": "x", "repeat": 2})
    two = command(args={"repeat": 2, "device": "x"})
    assert canonical(one) == canonical(two)
    assert b" " not in canonical(one)


def test_signed_payload_round_trips() -> None:
    original = command()
    decoded, signature = decode_signed(encode_signed(original, b"s" * 64))
    assert decoded == original
    assert signature == b"s" * 64


def test_a_command_with_an_extra_field_is_malformed() -> None:
    doc = json.loads(encode_signed(command(), b"s" * 64))
    doc["command"]["shell"] = "rm -rf /"
    with pytest.raises(MalformedMessageError, match="exactly the fields"):
        decode_signed(json.dumps(doc).encode())


def test_a_short_signature_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="64 bytes"):
        decode_signed(encode_signed(command(), b"s" * 10))


def test_a_command_expiring_before_it_is_issued_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="after issued_at"):
        new_command("cmd-00000002", "hq", "room-1", "report-config", {}, NOW, NOW - timedelta(seconds=1))


def test_an_action_off_the_allow_list_cannot_be_built() -> None:
    with pytest.raises(MalformedMessageError, match="action"):
        new_command("cmd-00000002", "hq", "room-1", "shell", {}, NOW, NOW + timedelta(minutes=5))


def test_unknown_args_are_refused() -> None:
    with pytest.raises(MalformedMessageError, match="unknown for service-tests: argv"):
        check_args("service-tests", {"argv": ["sh", "-c", "id"]})


def test_collect_logs_needs_an_upload_url_and_token() -> None:
    with pytest.raises(MalformedMessageError, match="upload_url"):
        check_args("collect-logs", {"since": "2026-11-24T20:00:00Z"})


def test_unit_names_cannot_carry_options() -> None:
    args = {"upload_url": "http://c/api/uploads/x", "upload_token": "t", "units": ["ssh; reboot"]}
    with pytest.raises(MalformedMessageError, match="units"):
        check_args("collect-logs", args)


def test_since_takes_relative_durations_and_timestamps() -> None:
    assert parse_since("2h", NOW) == NOW - timedelta(hours=2)
    assert parse_since("2026-11-24T20:00:00Z", NOW) == NOW - timedelta(hours=1)
    with pytest.raises(ValueError, match="expected 30m"):
        parse_since("yesterday", NOW)
