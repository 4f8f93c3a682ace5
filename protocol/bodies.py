"""The body of each message kind, and its validation.

The shapes are documented in ``docs/protocol.md``. Validation names the path of the bad field
(``body.checks[2].ok: expected a boolean, got 'yes'``) so a rejected message says what to fix.
Unknown body fields are allowed: a newer agent may add information an older collector ignores.
"""

from collections.abc import Callable
from typing import Any

from protocol.envelope import _PARSED, MAX_INT, Envelope, parse_ts
from protocol.errors import MalformedMessageError, ProtocolError
from protocol.ids import ID_PATTERN, validate_id
from protocol.topics import Topic, TopicKind

DEVICE_STATES = ("up", "degraded", "down", "unknown")
DEATH_REASONS = ("connection-lost", "shutdown")
EVENT_TYPES = ("state-changed", "reboot", "firmware-changed")
#: How many facts (firmware version, ...) and metrics one check result may carry.
MAX_FACTS = 32
MAX_METRICS = 64
#: The largest magnitude of a sample's value. No device metric comes near it (a petabyte counted in bytes),
#: every integer up to it is exact as a float, and no hour of samples can add up past a float's range (which
#: would take some 10^293 of them): the collector rolls every hour up into its history by that sum.
MAX_VALUE = 1e15

# Longest strings accepted, so that a value always fits its column in the collector's store.
SHORT, MEDIUM, NAME, LONG = 64, 128, 255, 4096

#: Which envelope kinds may travel on which topic.
KINDS_BY_TOPIC: dict[TopicKind, frozenset[str]] = {
    TopicKind.STATUS: frozenset({"birth", "death"}),
    TopicKind.STATE: frozenset({"state"}),
    TopicKind.TELEMETRY: frozenset({"telemetry"}),
    TopicKind.EVENT: frozenset({"event"}),
    TopicKind.REPLY: frozenset({"reply"}),
    TopicKind.CMD: frozenset(),
}


def _fail(path: str, expected: str, value: object) -> MalformedMessageError:
    return MalformedMessageError(f"{path}: expected {expected}, got {value!r}")


def _field(doc: dict[str, Any], path: str, name: str) -> Any:
    if name not in doc:
        raise MalformedMessageError(f"{path}.{name}: missing")
    return doc[name]


def _str(doc: dict[str, Any], path: str, name: str, limit: int, *, optional: bool = False) -> str | None:
    if optional and doc.get(name) is None:
        return None
    value = _field(doc, path, name)
    if not isinstance(value, str):
        raise _fail(f"{path}.{name}", "a string", value)
    if len(value) > limit:
        raise MalformedMessageError(f"{path}.{name}: longer than {limit} characters ({len(value)})")
    return value


def _choice(doc: dict[str, Any], path: str, name: str, choices: tuple[str, ...]) -> str:
    value = _field(doc, path, name)
    if value not in choices:
        raise _fail(f"{path}.{name}", f"one of {', '.join(choices)}", value)
    return str(value)


def _ts(doc: dict[str, Any], path: str, name: str) -> None:
    value = _field(doc, path, name)
    try:
        parse_ts(value)
    except (TypeError, ValueError):
        raise _fail(f"{path}.{name}", "an RFC 3339 timestamp with offset", value) from None


def _id(doc: dict[str, Any], path: str, name: str, kind: str) -> None:
    value = _field(doc, path, name)
    try:
        validate_id(kind, value)
    except ProtocolError as exc:
        raise MalformedMessageError(f"{path}.{name}: {exc}") from None


def _int(doc: dict[str, Any], path: str, name: str) -> None:
    value = _field(doc, path, name)
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise _fail(f"{path}.{name}", "an integer from 0 to 2^63-1", value)


def _list(doc: dict[str, Any], path: str, name: str) -> list[Any]:
    value = _field(doc, path, name)
    if not isinstance(value, list):
        raise _fail(f"{path}.{name}", "a list", value)
    return value


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, "an object", value)
    return value


def check_result(doc: object, path: str) -> None:
    """One check of one device: ``driver``, ``target``, ``ok``, ``detail``, ``ts``, ``duration_ms``."""
    item = _object(doc, path)
    _str(item, path, "driver", SHORT)
    _str(item, path, "target", LONG)
    ok = _field(item, path, "ok")
    if not isinstance(ok, bool):
        raise _fail(f"{path}.ok", "a boolean", ok)
    _str(item, path, "detail", LONG)
    _ts(item, path, "ts")
    duration = item.get("duration_ms")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int | float)):
        raise _fail(f"{path}.duration_ms", "a number or null", duration)
    for flag in ("degraded", "inconclusive"):
        if flag in item and not isinstance(item[flag], bool):
            raise _fail(f"{path}.{flag}", "a boolean", item[flag])
    if "facts" in item:
        _facts(item["facts"], f"{path}.facts")
    if "metrics" in item:
        _metrics(item["metrics"], f"{path}.metrics")


def _facts(value: object, path: str) -> None:
    facts = _object(value, path)
    if len(facts) > MAX_FACTS:
        raise _fail(path, f"at most {MAX_FACTS} entries", f"{len(facts)} entries")
    for name in facts:
        if len(name) > SHORT:
            raise _fail(path, f"names of at most {SHORT} characters", name)
        _str(facts, path, name, MEDIUM)


def _metrics(value: object, path: str) -> None:
    metrics = _object(value, path)
    if len(metrics) > MAX_METRICS:
        raise _fail(path, f"at most {MAX_METRICS} entries", f"{len(metrics)} entries")
    for name, number in metrics.items():
        if len(name) > MEDIUM:
            raise _fail(path, f"names of at most {MEDIUM} characters", name)
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise _fail(f"{path}.{name}", "a number", number)


def _checks(body: dict[str, Any]) -> None:
    for index, item in enumerate(_list(body, "body", "checks")):
        check_result(item, f"body.checks[{index}]")


def _birth(body: dict[str, Any]) -> None:
    if body.get("state") != "online":
        raise _fail("body.state", "'online'", body.get("state"))
    _str(body, "body", "version", SHORT)
    _str(body, "body", "hostname", NAME, optional=True)
    _int(body, "body", "will_seq")
    for index, item in enumerate(_list(body, "body", "devices")):
        path = f"body.devices[{index}]"
        device = _object(item, path)
        _id(device, path, "id", "device")
        _str(device, path, "model", SHORT)
        for name, limit in (("serial", MEDIUM), ("name", NAME), ("room", NAME), ("contract", MEDIUM)):
            _str(device, path, name, limit, optional=True)


def _death(body: dict[str, Any]) -> None:
    if body.get("state") != "offline":
        raise _fail("body.state", "'offline'", body.get("state"))
    _choice(body, "body", "reason", DEATH_REASONS)


def _state(body: dict[str, Any]) -> None:
    _id(body, "body", "device", "device")
    _choice(body, "body", "state", DEVICE_STATES)
    _ts(body, "body", "since")
    _str(body, "body", "reason", LONG)
    _checks(body)


def _event(body: dict[str, Any]) -> None:
    kind = _choice(body, "body", "type", EVENT_TYPES)
    _id(body, "body", "device", "device")
    if kind == "state-changed":
        _choice(body, "body", "from", DEVICE_STATES)
        _choice(body, "body", "to", DEVICE_STATES)
    _str(body, "body", "reason", LONG)
    _checks(body)


def _telemetry(body: dict[str, Any]) -> None:
    for index, item in enumerate(_list(body, "body", "samples")):
        path = f"body.samples[{index}]"
        sample = _object(item, path)
        _id(sample, path, "device", "device")
        _str(sample, path, "metric", MEDIUM)
        value = _field(sample, path, "value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(f"{path}.value", "a number", value)
        if not -MAX_VALUE <= value <= MAX_VALUE:
            raise _fail(f"{path}.value", "a number from -1e15 to 1e15", value)
        _ts(sample, path, "ts")


def _reply(body: dict[str, Any]) -> None:
    from protocol.commands import REPLY_STATUSES

    _str(body, "body", "command", MEDIUM)
    if "status" in body:
        _choice(body, "body", "status", REPLY_STATUSES)
    _str(body, "body", "message", LONG, optional=True)
    progress = body.get("progress")
    if progress is not None and (isinstance(progress, bool) or not isinstance(progress, int | float)):
        raise _fail("body.progress", "a number from 0 to 1 or null", progress)
    if body.get("result") is not None:
        _object(body["result"], "body.result")


_VALIDATORS: dict[str, Callable[[dict[str, Any]], None]] = {
    "birth": _birth,
    "death": _death,
    "state": _state,
    "event": _event,
    "telemetry": _telemetry,
    "reply": _reply,
}


_ID = ID_PATTERN.fullmatch


def telemetry_ok(body: dict[str, Any]) -> bool:
    """True if ``_telemetry`` would accept ``body``, tested with few calls: ingest's hot path.

    It accepts a subset of what ``_telemetry`` accepts (exact JSON types only); False means "not shown
    valid here", and the full validator then decides and names what is wrong, so errors read the same.
    """
    samples = body.get("samples")
    if type(samples) is not list:
        return False
    for sample in samples:
        if type(sample) is not dict:
            return False
        device = sample.get("device")
        metric = sample.get("metric")
        value = sample.get("value")
        ts = sample.get("ts")
        if not (
            type(device) is str
            and type(metric) is str
            and (type(value) is float or type(value) is int)
            and -MAX_VALUE <= value <= MAX_VALUE
            and type(ts) is str
            and len(metric) <= MEDIUM
            and _ID(device)
        ):
            return False
        if ts not in _PARSED:
            try:
                parse_ts(ts)
            except ValueError:
                return False
    return True


def validate_body(envelope: Envelope) -> None:
    """Raise ``MalformedMessageError`` if the body does not have the shape its kind requires."""
    if envelope.kind == "telemetry" and telemetry_ok(envelope.body):
        return
    _VALIDATORS[envelope.kind](envelope.body)


def validate_against_topic(envelope: Envelope, topic: Topic) -> None:
    """Raise ``MalformedMessageError`` if the envelope does not belong on the topic it came in on.

    An agent may only speak for itself: the envelope's site and agent must match the topic's, and
    a state message must be about the device its topic names.
    """
    if (envelope.site, envelope.agent) != (topic.site, topic.agent):
        raise MalformedMessageError(
            f"envelope is from {envelope.site}/{envelope.agent} "
            f"but arrived on the topic of {topic.site}/{topic.agent}"
        )
    if envelope.kind not in KINDS_BY_TOPIC[topic.kind]:
        raise MalformedMessageError(f"kind {envelope.kind!r} does not belong on a {topic.kind.value} topic")
    if topic.device is not None and envelope.body.get("device") != topic.device:
        raise MalformedMessageError(
            f"state of device {envelope.body.get('device')!r} arrived on the topic of device {topic.device!r}"
        )
