"""The JSON envelope every hezo message travels in.

``{"v": 1, "site": ..., "agent": ..., "boot": ..., "seq": ..., "ts": ..., "kind": ..., "body": {...}}``

``(agent, boot, seq)`` is a message's identity: ``boot`` changes at every agent start and ``seq``
strictly increases within one boot, so a receiver can store each message once and see gaps.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from protocol.errors import MalformedMessageError, ProtocolError, UnsupportedVersionError
from protocol.ids import ID_PATTERN, validate_id

SCHEMA_VERSION = 1
KINDS = frozenset({"birth", "death", "state", "event", "telemetry", "reply"})
MAX_PAYLOAD_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_INT = 2**63 - 1  # what a BIGINT column holds
BOOT_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FIELDS = ("v", "site", "agent", "boot", "seq", "ts", "kind", "body")
_FIELD_SET = frozenset(_FIELDS)
_BOOT = BOOT_PATTERN.fullmatch
_ID = ID_PATTERN.fullmatch


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision, e.g. ``2026-11-24T21:43:55.123Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


#: Timestamps parsed lately, text -> moment: an agent's samples of one poll share their time, and ingest reads
#: each one several times (validation, storing). Parsing is pure, so a cached answer is the same answer.
_PARSED: dict[str, datetime] = {}
_PARSED_MAX = 4096


def parse_ts(text: str) -> datetime:
    """Parse an RFC 3339 timestamp with an explicit offset; raise ``ValueError`` otherwise."""
    if type(text) is str:
        known = _PARSED.get(text)
        if known is not None:
            return known
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone offset")
    moment = moment.astimezone(UTC)
    if type(text) is str:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()  # a plain bound: what repeats is the time of the current polls
        _PARSED[text] = moment
    return moment


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message. ``body`` is the kind-specific content, a JSON object."""

    site: str
    agent: str
    boot: str
    seq: int
    ts: str
    kind: str
    body: dict[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    @property
    def identity(self) -> tuple[str, str, str, int]:
        return (self.site, self.agent, self.boot, self.seq)

    @property
    def moment(self) -> datetime:
        return parse_ts(self.ts)


def encode(envelope: Envelope) -> bytes:
    """Serialise an envelope to compact UTF-8 JSON, checking it the way ``decode`` would."""
    _check(envelope)
    doc = {name: getattr(envelope, name) for name in _FIELDS}
    data = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(f"encoded message is {len(data)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit")
    return data


def _refuse_constant(name: str) -> None:
    raise MalformedMessageError(f"payload is not JSON we accept: {name} is not a number in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise MalformedMessageError(f"payload is not JSON we accept: {text} is too large for a number")
    return value


#: One decoder for every payload: ``json.loads`` with options builds a new decoder at every call. ``_PLAIN``
#: leaves floats to the C scanner, for payloads where no number can be too large for a float: that needs an
#: exponent (a digit then ``e`` or ``E``) or some 309 digits in a row. ``_DIGITS`` makes every digit ``0``
#: and ``E`` ``e``, so one search finds either (also inside strings, such as a hex boot id: the slower pass).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_PLAIN = json.JSONDecoder(parse_constant=_refuse_constant)
_DIGITS = bytes.maketrans(b"123456789E", b"000000000e")
_LONG_RUN = b"0" * 300


def _loads(payload: bytes, text: str) -> object:
    """``json.loads(text, parse_constant=..., parse_float=...)``: the same answers and errors, faster."""
    if text.startswith("\ufeff"):  # what json.loads refuses before decoding
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    shape = payload.translate(_DIGITS)
    if b"0e" in shape or _LONG_RUN in shape:
        return _DECODER.decode(text)
    return _PLAIN.decode(text)


def _check_depth(doc: object) -> None:
    """Refuse documents nested deeper than ``MAX_DEPTH``: whoever reads them later recurses too."""
    stack: list[tuple[object, int]] = [(doc, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise MalformedMessageError(
                f"payload is not JSON we accept: nested deeper than {MAX_DEPTH} levels"
            )
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


def _check_strings(payload: bytes, doc: object) -> None:
    """Refuse strings (keys included) holding NUL or a lone surrogate: JSON allows both as escapes, but no
    store keeps them (PostgreSQL refuses NUL in text, and a lone surrogate is not UTF-8), so a message holding
    one would fail at every try to store it and hold up everything behind it."""
    if b"\\u" not in payload:  # an escape is the only way either gets into a string
        return
    stack: list[object] = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedMessageError(
                    "payload is not JSON we accept: a string holds a lone surrogate (\\ud800-\\udfff)"
                ) from None
            if "\x00" in item:
                raise MalformedMessageError("payload is not JSON we accept: a string holds NUL (\\u0000)")


def _limit_depth(payload: bytes, doc: object) -> None:
    # A document with fewer containers than MAX_DEPTH cannot nest deeper (counting its scalars' level too);
    # braces inside strings only raise the count. This skips the walk for every ordinary message.
    if payload.count(b"{") + payload.count(b"[") >= MAX_DEPTH:
        _check_depth(doc)


def decode(payload: bytes) -> Envelope:
    """Parse and validate a payload, or raise ``MalformedMessageError`` / ``UnsupportedVersionError``."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedMessageError(
            f"payload is {len(payload)} bytes, over the {MAX_PAYLOAD_BYTES} byte limit"
        )
    try:
        # Decode first: json.loads on bytes would also accept UTF-16 and UTF-32, which the contract does not.
        doc = _loads(payload, payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise MalformedMessageError(f"payload is not UTF-8: {exc.reason} at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise MalformedMessageError(
            f"payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedMessageError(
            f"payload is not JSON we accept: nested deeper than {MAX_DEPTH} levels"
        ) from None
    except MalformedMessageError:
        raise
    except ValueError:  # the one left: an integer of more digits than Python converts (4300)
        raise MalformedMessageError("payload is not JSON we accept: a number has too many digits") from None
    _limit_depth(payload, doc)
    _check_strings(payload, doc)
    if not isinstance(doc, dict):
        raise MalformedMessageError(f"payload must be a JSON object, got {type(doc).__name__}")
    if "v" not in doc:
        raise MalformedMessageError("missing field 'v' (schema version)")
    version = doc["v"]
    if type(version) is not int:
        raise MalformedMessageError(f"field 'v' must be an integer, got {version!r}")
    if version != SCHEMA_VERSION:
        raise UnsupportedVersionError(version, SCHEMA_VERSION)
    if doc.keys() != _FIELD_SET:
        missing = [name for name in _FIELDS if name not in doc]
        if missing:
            raise MalformedMessageError(f"missing field(s): {', '.join(missing)}")
        unknown = sorted(set(doc) - _FIELD_SET)
        raise MalformedMessageError(f"unknown field(s): {', '.join(unknown)}")
    envelope = Envelope(
        site=doc["site"],
        agent=doc["agent"],
        boot=doc["boot"],
        seq=doc["seq"],
        ts=doc["ts"],
        kind=doc["kind"],
        body=doc["body"],
        v=version,
    )
    _check(envelope)
    return envelope


def _valid(envelope: Envelope) -> bool:
    """True if ``_check`` would pass, tested the quick way; False means: let ``_check`` say what is wrong.

    It accepts a subset of what ``_check`` accepts (exact types only), so errors still come from ``_check``.
    """
    site, agent, boot, seq, ts = envelope.site, envelope.agent, envelope.boot, envelope.seq, envelope.ts
    if not (
        type(site) is str
        and type(agent) is str
        and type(boot) is str
        and type(seq) is int
        and type(ts) is str
        and 0 <= seq <= MAX_INT
        and type(envelope.kind) is str
        and envelope.kind in KINDS
        and type(envelope.body) is dict
        and _ID(site)
        and _ID(agent)
        and _BOOT(boot)
    ):
        return False
    try:
        parse_ts(ts)
    except ValueError:
        return False
    return True


def _check(envelope: Envelope) -> None:
    if _valid(envelope):
        return
    for name in ("site", "agent"):
        try:
            validate_id(name, getattr(envelope, name))
        except ProtocolError as exc:
            raise MalformedMessageError(f"field '{name}': {exc}") from None
    if not isinstance(envelope.boot, str) or not BOOT_PATTERN.fullmatch(envelope.boot):
        raise MalformedMessageError(
            f"field 'boot' must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-', got {envelope.boot!r}"
        )
    if type(envelope.seq) is not int or not 0 <= envelope.seq <= MAX_INT:
        raise MalformedMessageError(f"field 'seq' must be an integer from 0 to 2^63-1, got {envelope.seq!r}")
    if not isinstance(envelope.ts, str):
        raise MalformedMessageError(f"field 'ts' must be an RFC 3339 string, got {envelope.ts!r}")
    try:
        parse_ts(envelope.ts)
    except ValueError:
        raise MalformedMessageError(
            f"field 'ts' is not an RFC 3339 timestamp with offset: {envelope.ts!r}"
        ) from None
    if not isinstance(envelope.kind, str) or envelope.kind not in KINDS:
        raise MalformedMessageError(
            f"field 'kind' must be one of {', '.join(sorted(KINDS))}, got {envelope.kind!r}"
        )
    if not isinstance(envelope.body, dict):
        raise MalformedMessageError(f"field 'body' must be a JSON object, got {type(envelope.body).__name__}")
