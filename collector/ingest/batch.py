"""What a batch of messages carries through one transaction: the messages that were new, and the counters
and requests to act on after the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from protocol import Envelope

#: One message as the writer hands it over: topic, payload, when it was received, the broker's retain flag.
Incoming = tuple[str, bytes, datetime, bool]


@dataclass
class Batch:
    """What one transaction found: new messages in arrival order, and what to do after the commit."""

    received: list[tuple[Envelope, datetime, bool]] = field(default_factory=list)
    fresh: list[tuple[Envelope, datetime, bool]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: int = 0
    republish: list[tuple[str, str]] = field(default_factory=list)
    #: Each boot of the batch's messages stored before it: (max_seq, missing), read and locked once.
    boots: dict[tuple[str, str, str], tuple[int | None, int]] = field(default_factory=dict)
