"""The quick checks on ingest's hot path accept only what the full validators accept, and every error still
comes from the full validators, word for word."""

import json
from typing import Any

import pytest

from protocol import Envelope, MalformedMessageError, ProtocolError, decode, encode, parse_ts
from protocol.bodies import _telemetry, telemetry_ok, validate_body
from protocol.envelope import _check, _valid

TS = "2026-11-24T21:43:55.123Z"


def sample(**changes: object) -> dict[str, Any]:
    item: dict[str, Any] = {"device": "rally-bar", "metric": "cpu", "value": 12.5, "ts": TS}
    item.update(changes)
    return {name: value for name, value in item.items() if value is not _GONE}


_GONE = object()


def telemetry(body: object) -> Envelope:
    return Envelope("acme", "room-1", "b00t", 7, TS, "telemetry", body)  # type: ignore[arg-type]


def full_error(body: dict[str, Any]) -> str:
    with pytest.raises(MalformedMessageError) as caught:
        _telemetry(body)
    return str(caught.value)


MALFORMED_BODIES: list[dict[str, Any]] = [
    {},
    {"samples": None},
    {"samples": {"device": "rally-bar"}},
    {"samples": ["not an object"]},
    {"samples": [sample(), None]},
    {"samples": [sample(device=_GONE)]},
    {"samples": [sample(device=None)]},
    {"samples": [sample(device=7)]},
    {"samples": [sample(device="Rally Bar")]},
    {"samples": [sample(device="-rally")]},
    {"samples": [sample(device="r" * 65)]},
    {"samples": [sample(device="rally/bar")]},
    {"samples": [sample(metric=_GONE)]},
    {"samples": [sample(metric=None)]},
    {"samples": [sample(metric=3)]},
    {"samples": [sample(metric="m" * 129)]},
    {"samples": [sample(value=_GONE)]},
    {"samples": [sample(value=None)]},
    {"samples": [sample(value=True)]},
    {"samples": [sample(value="12.5")]},
    {"samples": [sample(value=[1])]},
    {"samples": [sample(ts=_GONE)]},
    {"samples": [sample(ts=None)]},
    {"samples": [sample(ts=1764020635)]},
    {"samples": [sample(ts="yesterday")]},
    {"samples": [sample(ts="2026-11-24T21:43:55")]},
    {"samples": [sample(ts="2026-11-24")]},
    {"samples": [sample(), sample(), sample(value=False)]},
    {"samples": [sample(value=10**309)]},
    {"samples": [sample(value=-(10**309))]},
    {"samples": [sample(value=1.7e308)]},
    {"samples": [sample(), sample(value=-1e15 - 1)]},
    {"samples": [sample(value=10**15 + 1)]},
]


@pytest.mark.parametrize("body", MALFORMED_BODIES, ids=lambda body: json.dumps(body, default=str)[:60])
def test_a_malformed_telemetry_body_gets_the_full_validators_error(body: dict[str, Any]) -> None:
    assert not telemetry_ok(body)
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(telemetry(body))
    assert str(caught.value) == full_error(body)


@pytest.mark.parametrize(
    "body",
    [
        {"samples": []},
        {"samples": [sample()]},
        {"samples": [sample(value=3), sample(value=-0.5, metric="m" * 128, device="r" * 64)]},
        {"samples": [sample(value=10**15), sample(value=-1e15)]},
        {"samples": [sample(ts="2026-11-24T22:43:55+01:00", extra="a newer agent's field")], "more": 1},
    ],
)
def test_a_valid_telemetry_body_passes_both_ways(body: dict[str, Any]) -> None:
    _telemetry(body)
    assert telemetry_ok(body)
    validate_body(telemetry(body))


def test_a_timestamp_refused_once_is_refused_again_after_a_valid_one() -> None:
    assert parse_ts(TS) == parse_ts(TS)
    assert parse_ts("2026-11-24T22:43:55.123+01:00") == parse_ts(TS)
    for _ in range(2):
        with pytest.raises(ValueError, match="no time zone offset"):
            parse_ts("2026-11-24T21:43:55.123")
    with pytest.raises(TypeError):
        parse_ts(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "changes",
    [
        {"site": "Acme"},
        {"site": 1},
        {"agent": "room/1"},
        {"boot": ""},
        {"boot": 7},
        {"seq": -1},
        {"seq": 2**63},
        {"seq": True},
        {"seq": 1.0},
        {"ts": "yesterday"},
        {"ts": "2026-11-24T21:43:55"},
        {"ts": 1},
        {"kind": "hello"},
        {"body": []},
    ],
)
def test_a_malformed_envelope_is_left_to_the_full_check(changes: dict[str, object]) -> None:
    fields: dict[str, Any] = {
        "site": "acme",
        "agent": "room-1",
        "boot": "b00t",
        "seq": 7,
        "ts": TS,
        "kind": "telemetry",
        "body": {"samples": []},
    }
    fields.update(changes)
    envelope = Envelope(**fields)
    assert not _valid(envelope)
    with pytest.raises(MalformedMessageError):
        _check(envelope)
    with pytest.raises(MalformedMessageError):
        decode(json.dumps({"v": 1, **fields}).encode())


def test_a_payload_with_a_byte_order_mark_is_refused_as_json_refuses_it() -> None:
    payload = b"\xef\xbb\xbf" + encode(telemetry({"samples": [sample()]}))
    with pytest.raises(ProtocolError) as caught:
        decode(payload)
    assert str(caught.value) == (
        "payload is not JSON: Unexpected UTF-8 BOM (decode using utf-8-sig) at line 1 column 1"
    )


def test_a_decoded_telemetry_envelope_is_the_one_encoded() -> None:
    envelope = telemetry({"samples": [sample(), sample(value=7)]})
    assert decode(encode(envelope)) == envelope


@pytest.mark.parametrize(
    ("number", "error"),
    [
        ("1e999", "1e999 is too large for a number"),
        ("-2.5E+400", "-2.5E+400 is too large for a number"),
        ("9" * 400 + ".5", "9" * 400 + ".5 is too large for a number"),
    ],
)
def test_a_float_too_large_is_refused_wherever_it_is(number: str, error: str) -> None:
    envelope = json.loads(encode(telemetry({"samples": [sample()]})))
    text = json.dumps(envelope).replace('"samples"', f'"extra": {{"deep": [{number}]}}, "samples"')
    with pytest.raises(ProtocolError) as caught:
        decode(text.encode())
    assert str(caught.value) == f"payload is not JSON we accept: {error}"


def test_floats_read_without_the_check_are_the_same_numbers() -> None:
    values = [12.5, -0.001, 1234567.125, 0.1 + 0.2, 3.0]
    envelope = telemetry({"samples": [sample(value=value) for value in values]})
    decoded = decode(encode(envelope))
    assert [item["value"] for item in decoded.body["samples"]] == values
