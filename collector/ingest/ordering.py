"""Where a message stands among its agent's messages.

The order of two messages of one agent is (boot, seq): boot ids sort as strings in start order and seq
strictly increases within a boot (docs/protocol.md). The agent's clock orders nothing. Keys are compared here
in Python, not in SQL, so a database collation cannot change the order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from protocol import Envelope


def order_key(envelope: Envelope) -> tuple[str, int]:
    """Where a message stands among its agent's messages: ``(boot, seq)``."""
    return (envelope.boot, envelope.seq)


def status_key(row: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """The order key of the last status message applied to an agent's row, if any."""
    if row is None or row["boot"] is None or row["status_seq"] is None:
        return None
    return (row["boot"], row["status_seq"])
