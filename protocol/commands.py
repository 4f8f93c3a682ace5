"""Commands from the collector to an agent: their shape, the bytes that are signed, and field checks.

A command travels on ``{prefix}/{site}/{agent}/cmd`` as one JSON document::

    {"v": 1, "command": {...}, "signature": "<base64 Ed25519 signature of canonical(command)>"}

``command`` holds ``id``, ``site``, ``agent``, ``action``, ``args``, ``issued_at`` and ``expires_at``.
The signature covers :func:`canonical` of ``command`` (sorted keys, no spaces, ASCII only), so both sides
agree byte for byte whatever JSON library wrote the document. Signing and verifying need a crypto library
and live with the collector and the agent; this module stays free of third-party packages.

The agent answers on ``{prefix}/{site}/{agent}/reply`` with ``reply`` envelopes whose body is
``{"command": ID, "status": ..., ...}`` (see ``REPLY_STATUSES`` and ``docs/protocol.md``).
"""

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol.envelope import format_ts, parse_ts
from protocol.errors import MalformedMessageError, ProtocolError
from protocol.ids import validate_id

COMMAND_VERSION = 1
#: Actions an agent may run. Nothing else is ever executed, and no action takes a shell string.
ACTIONS = ("service-tests", "collect-logs", "republish-state", "report-config")
#: ``accepted`` and ``progress`` come first; ``done``, ``failed`` and ``refused`` end a command.
REPLY_STATUSES = ("accepted", "progress", "done", "failed", "refused")
FINAL_STATUSES = frozenset({"done", "failed", "refused"})
#: Why an agent refused a command (the ``reason`` of a ``refused`` reply).
REFUSALS = (
    "malformed",
    "wrong-agent",
    "bad-signature",
    "expired",
    "not-yet-valid",
    "too-long",
    "replayed",
    "not-allowed",
    "bad-args",
    "disabled",
)
COMMAND_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
MAX_COMMAND_BYTES = 16 * 1024
_SIGNATURE_BYTES = 64


@dataclass(frozen=True)
class Command:
    """One command to one agent. ``args`` depend on ``action`` (see :func:`check_args`)."""

    id: str
    site: str
    agent: str
    action: str
    issued_at: str
    expires_at: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "site": self.site,
            "agent": self.agent,
            "action": self.action,
            "args": self.args,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
        }

    @property
    def issued(self) -> datetime:
        return parse_ts(self.issued_at)

    @property
    def expires(self) -> datetime:
        return parse_ts(self.expires_at)


def canonical(command: Command) -> bytes:
    """The bytes that are signed: the command as JSON with sorted keys, no whitespace, ASCII only."""
    return json.dumps(
        command.to_doc(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def new_command(  # noqa: PLR0917 (every field of a command)
    command_id: str,
    site: str,
    agent: str,
    action: str,
    args: dict[str, Any],
    issued: datetime,
    expires: datetime,
) -> Command:
    """A checked command; raise ``ProtocolError`` if a field is unusable."""
    command = Command(command_id, site, agent, action, format_ts(issued), format_ts(expires), dict(args))
    _check_command(command)
    return command


def encode_signed(command: Command, signature: bytes) -> bytes:
    """The payload published on the cmd topic."""
    doc = {
        "v": COMMAND_VERSION,
        "command": command.to_doc(),
        "signature": base64.b64encode(signature).decode(),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def decode_signed(payload: bytes) -> tuple[Command, bytes]:
    """The command and its signature from a cmd payload; ``MalformedMessageError`` says what is wrong.

    Only the shape is checked here: whether the signature is valid is the receiver's business.
    """
    if len(payload) > MAX_COMMAND_BYTES:
        raise MalformedMessageError(f"command is {len(payload)} bytes, over {MAX_COMMAND_BYTES}")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessageError(f"command is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedMessageError("command: expected a JSON object")
    if doc.get("v") != COMMAND_VERSION:
        raise MalformedMessageError(f"v: expected {COMMAND_VERSION}, got {doc.get('v')!r}")
    signature = doc.get("signature")
    if not isinstance(signature, str):
        raise MalformedMessageError("signature: expected a base64 string")
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedMessageError("signature: not base64") from None
    if len(raw) != _SIGNATURE_BYTES:
        raise MalformedMessageError(f"signature: expected {_SIGNATURE_BYTES} bytes, got {len(raw)}")
    body = doc.get("command")
    if not isinstance(body, dict):
        raise MalformedMessageError("command: expected an object")
    expected = {"id", "site", "agent", "action", "args", "issued_at", "expires_at"}
    if set(body) != expected:
        raise MalformedMessageError(f"command: expected exactly the fields {', '.join(sorted(expected))}")
    for name in expected - {"args"}:
        if not isinstance(body[name], str):
            raise MalformedMessageError(f"command.{name}: expected a string")
    if not isinstance(body["args"], dict):
        raise MalformedMessageError("command.args: expected an object")
    command = Command(
        body["id"],
        body["site"],
        body["agent"],
        body["action"],
        body["issued_at"],
        body["expires_at"],
        body["args"],
    )
    _check_command(command, check_action=False)
    return command, raw


def _check_command(command: Command, *, check_action: bool = True) -> None:
    if not COMMAND_ID.fullmatch(command.id):
        raise MalformedMessageError("command.id: expected 8-64 characters of A-Z, a-z, 0-9, _ or -")
    try:
        validate_id("site", command.site)
        validate_id("agent", command.agent)
        issued = command.issued
        expires = command.expires
    except (ProtocolError, TypeError, ValueError) as exc:
        raise MalformedMessageError(f"command: {exc}") from None
    if expires <= issued:
        raise MalformedMessageError("command.expires_at: must be after issued_at")
    if check_action and command.action not in ACTIONS:
        raise MalformedMessageError(f"command.action: expected one of {', '.join(ACTIONS)}")


def _opt_str(args: dict[str, Any], name: str, limit: int = 4096) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise MalformedMessageError(f"args.{name}: expected a string of at most {limit} characters")
    return value


def check_args(action: str, args: dict[str, Any]) -> None:
    """Raise ``MalformedMessageError`` if ``args`` do not fit ``action``; unknown args are refused."""
    allowed: dict[str, set[str]] = {
        "service-tests": {"device", "repeat"},
        "collect-logs": {
            "device",
            "since",
            "until",
            "units",
            "upload_url",
            "upload_token",
            "ticket",
            "personal_data",
        },
        "republish-state": set(),
        "report-config": set(),
    }
    unknown = set(args) - allowed[action]
    if unknown:
        raise MalformedMessageError(f"args: unknown for {action}: {', '.join(sorted(unknown))}")
    device = _opt_str(args, "device", 64)
    if device is not None:
        try:
            validate_id("device", device)
        except ProtocolError as exc:
            raise MalformedMessageError(f"args.device: {exc}") from None
    if "repeat" in args and (type(args["repeat"]) is not int or not 1 <= args["repeat"] <= 100):
        raise MalformedMessageError("args.repeat: expected an integer from 1 to 100")
    for name in ("since", "until"):
        text = _opt_str(args, name, 64)
        if text is not None:
            try:
                parse_ts(text)
            except ValueError:
                raise MalformedMessageError(f"args.{name}: expected an RFC 3339 timestamp") from None
    units = args.get("units")
    if units is not None and (
        not isinstance(units, list)
        or len(units) > 32
        or not all(isinstance(u, str) and re.fullmatch(r"[A-Za-z0-9@._:-]{1,128}", u) for u in units)
    ):
        raise MalformedMessageError("args.units: expected a list of systemd unit names")
    if action == "collect-logs":
        url = _opt_str(args, "upload_url", 2048)
        token = _opt_str(args, "upload_token", 256)
        if url is None or not url.startswith(("http://", "https://")) or not token:
            raise MalformedMessageError(
                "args: collect-logs needs upload_url (http(s)://...) and upload_token"
            )
    _opt_str(args, "ticket", 32)
    if args.get("personal_data") not in (None, "drop", "mask", "keep"):
        raise MalformedMessageError("args: personal_data must be drop, mask or keep")


def parse_since(text: str, now: datetime) -> datetime:
    """``30m``, ``2h``, ``1d`` (before ``now``) or an RFC 3339 timestamp; ``ValueError`` otherwise."""
    from datetime import timedelta

    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        return parse_ts(text)
    except ValueError:
        raise ValueError(f"{text!r}: expected 30m, 2h, 1d or an RFC 3339 timestamp") from None
