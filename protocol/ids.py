"""Identifier rules for sites, agents and devices.

Ids become MQTT topic levels, so they may not contain ``/``, ``+`` or ``#``; the pattern below admits
only lower-case letters, digits, ``_`` and ``-``, starting with a letter or digit, at most 64 characters.
"""

import re

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def validate_id(kind: str, value: object) -> str:
    """Return ``value`` if it is a valid id, else raise ``ProtocolError`` naming ``kind``."""
    if type(value) is str and ID_PATTERN.fullmatch(value):
        return value  # the common case first: ingest checks some ten ids per message
    from protocol.errors import ProtocolError

    if not isinstance(value, str):
        raise ProtocolError(f"{kind} id must be a string, got {type(value).__name__}")
    if not ID_PATTERN.fullmatch(value):
        raise ProtocolError(
            f"{kind} id {value!r} is invalid: expected 1-64 characters of a-z, 0-9, '_' or '-', "
            "starting with a letter or digit"
        )
    return value
