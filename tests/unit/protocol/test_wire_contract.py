"""The wire contract: ids, topics, the envelope and the bodies, and the exact errors for bad input."""

import json

import pytest

from protocol import (
    Envelope,
    MalformedMessageError,
    ProtocolError,
    TopicKind,
    Topics,
    UnsupportedVersionError,
    decode,
    encode,
    validate_id,
)
from protocol.bodies import validate_against_topic, validate_body
from protocol.envelope import MAX_PAYLOAD_BYTES

TS = "2026-11-24T21:43:55.123Z"


def state_envelope(**body_changes: object) -> Envelope:
    body = {"device": "rally-bar", "state": "down", "since": TS, "reason": "refused", "checks": []}
    body.update(body_changes)
    return Envelope("acme", "room-1", "b00t", 7, TS, "state", body)


def raw(**changes: object) -> bytes:
    doc = json.loads(encode(state_envelope()))
    doc.update(changes)
    return json.dumps(doc).encode()


def decode_error(payload: bytes) -> str:
    with pytest.raises(ProtocolError) as caught:
        decode(payload)
    return str(caught.value)


def test_encode_then_decode_gives_the_same_envelope() -> None:
    envelope = state_envelope()
    assert decode(encode(envelope)) == envelope
    assert envelope.identity == ("acme", "room-1", "b00t", 7)


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (
            b"{not json",
            "payload is not JSON: Expecting property name enclosed in double quotes at line 1 column 2",
        ),
        (b"\xff\xfe{\x00}\x00", "payload is not UTF-8: invalid start byte at byte 0"),
        (b'{"v": NaN}', "payload is not JSON we accept: NaN is not a number in JSON"),
        (b"[" * 100_000, "payload is not JSON we accept: nested deeper than 32 levels"),
        (b"[" * 33 + b"]" * 33, "payload is not JSON we accept: nested deeper than 32 levels"),
        (b'{"v": 1e999}', "payload is not JSON we accept: 1e999 is too large for a number"),
        (b'{"v": ' + b"9" * 5000 + b"}", "payload is not JSON we accept: a number has too many digits"),
        (b"[1, 2]", "payload must be a JSON object, got list"),
        (b'{"site": "acme"}', "missing field 'v' (schema version)"),
        (b'{"v": "1"}', "field 'v' must be an integer, got '1'"),
        (b'{"v": 1, "site": "acme"}', "missing field(s): agent, boot, seq, ts, kind, body"),
    ],
)
def test_malformed_payloads_say_what_is_wrong(payload: bytes, error: str) -> None:
    assert decode_error(payload) == error


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"seq": -1}, "field 'seq' must be an integer from 0 to 2^63-1, got -1"),
        ({"seq": 2**63}, "field 'seq' must be an integer from 0 to 2^63-1, got 9223372036854775808"),
        ({"seq": True}, "field 'seq' must be an integer from 0 to 2^63-1, got True"),
        ({"ts": "yesterday"}, "field 'ts' is not an RFC 3339 timestamp with offset: 'yesterday'"),
        (
            {"ts": "2026-11-24T21:43:55"},
            "field 'ts' is not an RFC 3339 timestamp with offset: '2026-11-24T21:43:55'",
        ),
        (
            {"kind": "hello"},
            "field 'kind' must be one of birth, death, event, reply, state, telemetry, got 'hello'",
        ),
        ({"body": []}, "field 'body' must be a JSON object, got list"),
        ({"boot": "a/b"}, "field 'boot' must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-', got 'a/b'"),
        ({"extra": 1}, "unknown field(s): extra"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], error: str) -> None:
    assert decode_error(raw(**changes)) == error


def test_an_id_that_is_not_a_topic_level_is_refused() -> None:
    assert decode_error(raw(site="acme/+")) == (
        "field 'site': site id 'acme/+' is invalid: expected 1-64 characters of a-z, 0-9, '_' or '-', "
        "starting with a letter or digit"
    )


def test_an_unknown_version_is_its_own_error() -> None:
    with pytest.raises(UnsupportedVersionError) as caught:
        decode(raw(v=2))
    assert str(caught.value) == "unsupported schema version 2: this side speaks v1"
    assert caught.value.version == 2


def test_an_oversized_payload_is_refused_before_parsing() -> None:
    with pytest.raises(MalformedMessageError, match="over the 1048576 byte limit"):
        decode(b" " * (MAX_PAYLOAD_BYTES + 1))


@pytest.mark.parametrize("value", ["a", "rally-bar_2", "0" * 64])
def test_valid_ids(value: str) -> None:
    assert validate_id("device", value) == value


@pytest.mark.parametrize("value", ["", "Rally", "-x", "a/b", "a+", "a#", "x" * 65, "ä"])
def test_invalid_ids(value: str) -> None:
    with pytest.raises(ProtocolError, match="device id"):
        validate_id("device", value)


def test_topics_round_trip() -> None:
    topics = Topics("acme/hezo/v1")
    assert topics.state("s", "a", "d") == "acme/hezo/v1/s/a/device/d/state"
    parsed = topics.parse("acme/hezo/v1/s/a/device/d/state")
    assert (parsed.kind, parsed.site, parsed.agent, parsed.device) == (TopicKind.STATE, "s", "a", "d")
    assert topics.parse(topics.status("s", "a")).kind is TopicKind.STATUS


@pytest.mark.parametrize(
    ("topic", "error"),
    [
        ("other/v1/s/a/status", "topic 'other/v1/s/a/status' is not under prefix 'hezo/v1'"),
        ("hezo/v1/s/a", "topic 'hezo/v1/s/a' is too short: expected hezo/v1/SITE/AGENT/..."),
        ("hezo/v1/s/a/gossip", "topic 'hezo/v1/s/a/gossip' has unknown kind 'gossip'"),
        ("hezo/v1/s/a/state", "topic 'hezo/v1/s/a/state': state topics are .../device/DEVICE/state"),
        ("hezo/v1/s/a/device/d/status", "topic 'hezo/v1/s/a/device/d/status' does not match any hezo topic"),
    ],
)
def test_foreign_topics_are_refused(topic: str, error: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        Topics().parse(topic)
    assert str(caught.value) == error


@pytest.mark.parametrize("prefix", ["", "/hezo", "hezo/", "hezo/+", "hezo//v1", "#"])
def test_a_prefix_with_wildcards_or_empty_levels_is_refused(prefix: str) -> None:
    with pytest.raises(ProtocolError):
        Topics(prefix)


def test_a_topic_builder_refuses_an_id_that_would_add_levels() -> None:
    with pytest.raises(ProtocolError, match="device id 'a/b' is invalid"):
        Topics().state("s", "a", "a/b")


def test_a_body_error_names_its_path() -> None:
    check = {"driver": "https", "target": "x", "ok": "yes", "detail": "", "ts": TS, "duration_ms": 1}
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(state_envelope(checks=[check]))
    assert str(caught.value) == "body.checks[0].ok: expected a boolean, got 'yes'"


def test_a_state_outside_the_known_ones_is_refused() -> None:
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(state_envelope(state="sideways"))
    assert str(caught.value) == "body.state: expected one of up, degraded, down, unknown, got 'sideways'"


def test_unknown_body_fields_are_allowed_for_newer_agents() -> None:
    received = decode(encode(state_envelope(firmware="1.2.3")))
    validate_body(received)  # raises MalformedMessageError if the field were refused
    assert received.body["firmware"] == "1.2.3"


def test_an_agent_may_speak_only_for_itself_and_its_own_devices() -> None:
    topics = Topics()
    envelope = state_envelope()
    validate_against_topic(envelope, topics.parse(topics.state("acme", "room-1", "rally-bar")))
    with pytest.raises(
        MalformedMessageError, match="envelope is from acme/room-1 but arrived on the topic of acme/room-2"
    ):
        validate_against_topic(envelope, topics.parse(topics.state("acme", "room-2", "rally-bar")))
    with pytest.raises(
        MalformedMessageError, match="state of device 'rally-bar' arrived on the topic of device 'meetup'"
    ):
        validate_against_topic(envelope, topics.parse(topics.state("acme", "room-1", "meetup")))
    with pytest.raises(MalformedMessageError, match="kind 'state' does not belong on a event topic"):
        validate_against_topic(envelope, topics.parse(topics.event("acme", "room-1")))


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("a\\u0000b", "payload is not JSON we accept: a string holds NUL (\\u0000)"),
        ("x\\ud800", "payload is not JSON we accept: a string holds a lone surrogate (\\ud800-\\udfff)"),
        ("\\udc00y", "payload is not JSON we accept: a string holds a lone surrogate (\\ud800-\\udfff)"),
    ],
)
def test_strings_no_store_keeps_are_refused(reason: str, error: str) -> None:
    # JSON allows these escapes, but PostgreSQL refuses NUL in text and a lone surrogate is not UTF-8: such a
    # message would fail at every try to store it, holding up everything behind it.
    payload = encode(state_envelope(reason="placeholder")).replace(b"placeholder", reason.encode())
    assert decode_error(payload) == error


@pytest.mark.parametrize("reason", ["\\ud83d\\ude00", "back\\\\u0000slash", "caf\\u00e9"])
def test_escapes_that_are_plain_text_are_kept(reason: str) -> None:
    payload = encode(state_envelope(reason="placeholder")).replace(b"placeholder", reason.encode())
    assert decode(payload).body["reason"] == json.loads(f'"{reason}"')


@pytest.mark.parametrize(
    "value",
    [10**309, 1.7e308, -1.7e308, 1e15 + 1, -(10**15) - 1],
    ids=["10**309", "1.7e308", "-1.7e308", "1e15+1", "-1e15-1"],
)
def test_a_sample_value_past_the_bound_is_refused(value: float) -> None:
    # Samples of an hour add up in the collector's history: bounded, they never pass a float's range.
    body = {"samples": [{"device": "rally-bar", "metric": "m", "value": value, "ts": TS}]}
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(Envelope("acme", "room-1", "b00t", 8, TS, "telemetry", body))
    assert str(caught.value) == f"body.samples[0].value: expected a number from -1e15 to 1e15, got {value!r}"


@pytest.mark.parametrize("value", [10**15, -1e15, 0, 2.5e-300])
def test_a_sample_value_up_to_the_bound_is_taken(value: float) -> None:
    body = {"samples": [{"device": "rally-bar", "metric": "m", "value": value, "ts": TS}]}
    validate_body(Envelope("acme", "room-1", "b00t", 8, TS, "telemetry", body))


def test_a_string_longer_than_its_column_is_refused_with_its_path() -> None:
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(state_envelope(reason="x" * 5000))
    assert str(caught.value) == "body.reason: longer than 4096 characters (5000)"


def event_envelope(**body: object) -> Envelope:
    return Envelope("acme", "room-1", "b00t", 8, TS, "event", body)


def test_a_reboot_event_needs_no_states_but_a_state_change_does() -> None:
    validate_body(event_envelope(type="reboot", device="tap-ip", reason="uptime 90 s -> 3 s", checks=[]))
    with pytest.raises(MalformedMessageError, match=r"body\.from: missing"):
        validate_body(event_envelope(type="state-changed", device="tap-ip", reason="", checks=[]))


def test_check_facts_must_be_short_strings() -> None:
    check = {"driver": "sync", "target": "x", "ok": True, "detail": "", "ts": TS, "duration_ms": 1}
    validate_body(state_envelope(checks=[{**check, "facts": {"firmware": "1.12.3"}}]))
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(state_envelope(checks=[{**check, "facts": {"firmware": 112}}]))
    assert str(caught.value) == "body.checks[0].facts.firmware: expected a string, got 112"


def test_check_metrics_must_be_numbers() -> None:
    check = {"driver": "icmp", "target": "x", "ok": True, "detail": "", "ts": TS, "duration_ms": 1}
    validate_body(state_envelope(checks=[{**check, "metrics": {"loss_pct": 40.0}}]))
    with pytest.raises(MalformedMessageError) as caught:
        validate_body(state_envelope(checks=[{**check, "metrics": {"loss_pct": "40%"}}]))
    assert str(caught.value) == "body.checks[0].metrics.loss_pct: expected a number, got '40%'"
