"""The wire contract shared by agent and collector: topics, ids and the message envelope.

This package has no third-party dependencies, so the agent stays light and both sides agree byte for byte.
"""

from protocol.envelope import (
    KINDS,
    SCHEMA_VERSION,
    Envelope,
    decode,
    encode,
    format_ts,
    parse_ts,
)
from protocol.errors import MalformedMessageError, ProtocolError, UnsupportedVersionError
from protocol.ids import ID_PATTERN, validate_id
from protocol.topics import DEFAULT_PREFIX, Topic, TopicKind, Topics

__all__ = [
    "DEFAULT_PREFIX",
    "ID_PATTERN",
    "KINDS",
    "SCHEMA_VERSION",
    "Envelope",
    "MalformedMessageError",
    "ProtocolError",
    "Topic",
    "TopicKind",
    "Topics",
    "UnsupportedVersionError",
    "decode",
    "encode",
    "format_ts",
    "parse_ts",
    "validate_id",
]
