"""The enrolment document: what the collector writes the agent takes, nothing else; no secret ever echoed."""

import json

import pytest

from protocol.enrolment import Enrolment, MalformedEnrolmentError, decode_enrolment, encode_enrolment

PASSWORD = "s3cret-Pa55word-0123456789abcdef"
DOCUMENT = Enrolment(
    site="acme-warsaw",
    agent="room-101",
    host="broker.example.net",
    port=8883,
    prefix="hezo/v1",
    client_id="hezo-agent/acme-warsaw/room-101",
    username="acme-warsaw/room-101",
    password=PASSWORD,
    ca="-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    command_key=None,
    issued_at="2026-12-04T10:00:00.000Z",
    issued_by="local:root",
)


def edited(**changes: object) -> bytes:
    document = json.loads(encode_enrolment(DOCUMENT))
    for path, value in changes.items():
        where, _, name = path.rpartition("__")
        (document[where] if where else document)[name] = value
    return json.dumps(document).encode()


def test_a_document_reads_back_as_written() -> None:
    assert decode_enrolment(encode_enrolment(DOCUMENT)) == DOCUMENT


def test_the_password_is_not_in_its_repr() -> None:
    assert PASSWORD not in repr(DOCUMENT)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hezo_enrolment": 2}, "enrolment format 2: this side takes 1"),
        ({"extra": 1}, r"unknown field\(s\): extra"),
        ({"broker__port": 0}, "'broker.port' must be an integer from 1 to 65535"),
        ({"agent": "Room 101"}, "agent"),
        ({"broker__prefix": "hezo/#"}, "may not contain"),
        ({"broker__ca": "not a certificate"}, "'broker.ca' must be null or PEM text"),
        ({"broker__password": "short"}, "'broker.password' must be 16-256 printable ASCII characters"),
        ({"broker__password": PASSWORD + " with space"}, "'broker.password' must be 16-256"),
    ],
)
def test_a_bad_field_is_named_and_the_password_never_repeated(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(MalformedEnrolmentError, match=message) as refused:
        decode_enrolment(edited(**changes))
    assert PASSWORD not in str(refused.value)


def test_something_else_than_an_enrolment_is_refused_as_such() -> None:
    with pytest.raises(MalformedEnrolmentError, match="not an enrolment"):
        decode_enrolment(b'{"v": 1}')
    with pytest.raises(MalformedEnrolmentError, match="not a JSON document"):
        decode_enrolment(b"\xff")
