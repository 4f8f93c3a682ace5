"""The enrolment document: what ``hezo-collector agents enrol`` hands out and ``hezo-agent enroll`` takes.

One JSON object, made once per credential; it holds the agent's broker login, so it is a secret (mode 0600,
never printed, never on a command line)::

    {"hezo_enrolment": 1,
     "site": "acme-warsaw", "agent": "room-101",
     "broker": {"host": "broker.example.net", "port": 8883, "prefix": "hezo/v1",
                "client_id": "hezo-agent/acme-warsaw/room-101", "username": "acme-warsaw/room-101",
                "password": "<43 characters>", "ca": "-----BEGIN CERTIFICATE-----\\n..."},
     "command_key": "-----BEGIN PUBLIC KEY-----\\n...",
     "issued_at": "2026-12-04T10:00:00.000Z", "issued_by": "local:root"}

``ca`` is the certificate the broker's is verified with (null: the system CAs); the connection is always TLS.
``command_key`` is the collector's Ed25519 public key that signs commands (null: remote diagnostics are off).
Errors never repeat the password.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from protocol.envelope import format_ts, parse_ts
from protocol.errors import ProtocolError
from protocol.ids import validate_id
from protocol.topics import validate_prefix

ENROLMENT_VERSION = 1
#: A document is small: two PEM texts and a few names. Anything larger is not one.
MAX_DOCUMENT_BYTES = 256 * 1024
_FIELDS = {"hezo_enrolment", "site", "agent", "broker", "command_key", "issued_at", "issued_by"}
_BROKER_FIELDS = {"host", "port", "prefix", "client_id", "username", "password", "ca"}
_HOST = re.compile(r"[A-Za-z0-9._:\[\]-]{1,253}")
_LOGIN = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no space: a client id, a user name
_PASSWORD = re.compile(r"[\x21-\x7e]{16,256}")
_PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"
_PEM_PUBLIC_KEY = "-----BEGIN PUBLIC KEY-----"


class MalformedEnrolmentError(ProtocolError):
    """The document is not an enrolment this side can take; the message says which field, never a secret."""


@dataclass(frozen=True)
class Enrolment:
    """An agent's identity at the broker, and what it trusts: the broker's CA, the collector's command key."""

    site: str
    agent: str
    host: str
    port: int
    prefix: str
    client_id: str
    username: str
    password: str = field(repr=False)
    ca: str | None
    command_key: str | None
    issued_at: str
    issued_by: str

    @property
    def fingerprint(self) -> str:
        return credential_fingerprint(self.password)


def credential_fingerprint(password: str) -> str:
    """What may be shown, logged and stored of a credential: the SHA-256 of its password, in hex.

    The password is 256 random bits, so its plain digest cannot be reversed by guessing; no salt is needed.
    """
    return hashlib.sha256(password.encode()).hexdigest()


def encode_enrolment(enrolment: Enrolment) -> bytes:
    document = {
        "hezo_enrolment": ENROLMENT_VERSION,
        "site": enrolment.site,
        "agent": enrolment.agent,
        "broker": {
            "host": enrolment.host,
            "port": enrolment.port,
            "prefix": enrolment.prefix,
            "client_id": enrolment.client_id,
            "username": enrolment.username,
            "password": enrolment.password,
            "ca": enrolment.ca,
        },
        "command_key": enrolment.command_key,
        "issued_at": enrolment.issued_at,
        "issued_by": enrolment.issued_by,
    }
    decode_enrolment(json.dumps(document).encode())  # never write what the other side would refuse
    return (json.dumps(document, indent=1) + "\n").encode()


def decode_enrolment(data: bytes) -> Enrolment:
    """Parse and check a document, or raise ``MalformedEnrolmentError`` saying what is wrong."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise MalformedEnrolmentError(f"an enrolment is at most {MAX_DOCUMENT_BYTES} bytes, got {len(data)}")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedEnrolmentError("not an enrolment: not a JSON document") from None
    if not isinstance(document, dict) or "hezo_enrolment" not in document:
        raise MalformedEnrolmentError("not an enrolment: no 'hezo_enrolment' field")
    if document["hezo_enrolment"] != ENROLMENT_VERSION:
        raise MalformedEnrolmentError(
            f"enrolment format {document['hezo_enrolment']!r}: this side takes {ENROLMENT_VERSION}"
        )
    _exact(document, _FIELDS, "")
    broker = document["broker"]
    if not isinstance(broker, dict):
        raise MalformedEnrolmentError("field 'broker' must be an object")
    _exact(broker, _BROKER_FIELDS, "broker.")
    try:
        site = validate_id("site", _text(document, "site"))
        agent = validate_id("agent", _text(document, "agent"))
        prefix = validate_prefix(_text(broker, "prefix", "broker."))
        issued_at = _text(document, "issued_at")
        parse_ts(issued_at)
    except MalformedEnrolmentError:
        raise
    except ProtocolError as exc:
        raise MalformedEnrolmentError(str(exc)) from None
    port = broker["port"]
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise MalformedEnrolmentError("field 'broker.port' must be an integer from 1 to 65535")
    password = broker["password"]
    if not isinstance(password, str) or not _PASSWORD.fullmatch(password):
        raise MalformedEnrolmentError("field 'broker.password' must be 16-256 printable ASCII characters")
    return Enrolment(
        site=site,
        agent=agent,
        host=_matching(broker, "host", _HOST, "broker."),
        port=port,
        prefix=prefix,
        client_id=_matching(broker, "client_id", _LOGIN, "broker."),
        username=_matching(broker, "username", _LOGIN, "broker."),
        password=password,
        ca=_pem(broker, "ca", _PEM_CERTIFICATE, "broker."),
        command_key=_pem(document, "command_key", _PEM_PUBLIC_KEY, ""),
        issued_at=format_ts(parse_ts(issued_at)),
        issued_by=_text(document, "issued_by")[:128],
    )


def _exact(document: dict[str, Any], fields: set[str], where: str) -> None:
    missing, unknown = fields - document.keys(), document.keys() - fields
    if missing:
        raise MalformedEnrolmentError(f"missing field(s): {', '.join(where + f for f in sorted(missing))}")
    if unknown:
        raise MalformedEnrolmentError(f"unknown field(s): {', '.join(where + f for f in sorted(unknown))}")


def _text(document: dict[str, Any], name: str, where: str = "") -> str:
    value = document[name]
    if not isinstance(value, str) or not value:
        raise MalformedEnrolmentError(f"field '{where}{name}' must be a non-empty string")
    return value


def _matching(document: dict[str, Any], name: str, pattern: re.Pattern[str], where: str) -> str:
    value = _text(document, name, where)
    if not pattern.fullmatch(value):
        raise MalformedEnrolmentError(f"field '{where}{name}' has characters or a length not allowed")
    return value


def _pem(document: dict[str, Any], name: str, header: str, where: str) -> str | None:
    value = document[name]
    if value is None:
        return None
    if not isinstance(value, str) or not value.lstrip().startswith(header) or len(value) > 64 * 1024:
        raise MalformedEnrolmentError(f"field '{where}{name}' must be null or PEM text starting {header}")
    return value
