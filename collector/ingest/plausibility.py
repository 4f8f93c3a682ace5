"""What ingest refuses to believe, before it stores anything: ordering keys and times that cannot be true.

An agent orders its messages by ``(boot, seq)`` and the collector keeps the newest state per device by that
key, so one forged key could freeze a device (a ``seq`` of 2^62) or an agent (a boot id that sorts after every
real one). A boot id is the agent's start time (12 hex digits of milliseconds, then 4 more: docs/protocol.md),
so a boot from the future is refused, as is a ``ts`` from the future, a ``since`` after its ``ts`` or from
before any agent existed. A ``seq`` far past the highest one of a known boot is refused in the transaction
(``seq_jumps``), with the stored marks at hand (read once per batch: ``gaps.read_boots``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from collector.config import IngestConfig
from protocol import Envelope, parse_ts

#: The agent's boot ids: start time in ms (12 hex digits), then 4 random hex digits.
_BOOT = re.compile(r"[0-9a-f]{16}")
#: Nothing any agent says happened before this.
EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)


def implausible(envelope: Envelope, received_at: datetime, settings: IngestConfig) -> str | None:
    """Why ``envelope`` cannot be true when received at ``received_at``, or None."""
    latest = received_at + timedelta(seconds=settings.max_clock_skew)
    if settings.boot_ids == "agent-clock":
        if not _BOOT.fullmatch(envelope.boot):
            return f"boot {envelope.boot!r} is not an agent's start time (16 lower-case hex digits)"
        if int(envelope.boot[:12], 16) > latest.timestamp() * 1000:  # in ms: no date that cannot be
            return f"boot {envelope.boot} says the agent started after now"
    moment = envelope.moment
    if moment > latest:
        return f"ts {envelope.ts} is more than {settings.max_clock_skew:g} s ahead of the collector's clock"
    if moment < EARLIEST:
        return f"ts {envelope.ts} is before any agent existed"
    since = envelope.body.get("since") if envelope.kind == "state" else None
    if isinstance(since, str):
        at = parse_ts(since)
        if at > moment:
            return f"since {since} is after the message's ts {envelope.ts}"
        if at < EARLIEST:
            return f"since {since} is before any agent existed"
    return None


def seq_jumps(
    boots: Mapping[tuple[str, str, str], tuple[int | None, int]],
    valid: list[tuple[Envelope, datetime, bool]],
    settings: IngestConfig,
) -> dict[int, str]:
    """The messages (by position in ``valid``) whose ``seq`` lies more than ``max_seq_jump`` past the highest
    one stored for their boot (``boots``: (max_seq, missing) per stored boot), with why. A boot not seen yet
    has no mark to stray from."""
    far: dict[int, str] = {}
    for index, (envelope, _received, _retained) in enumerate(valid):
        stored = boots.get((envelope.site, envelope.agent, envelope.boot))
        mark = None if stored is None else stored[0]
        if mark is not None and envelope.seq > mark + settings.max_seq_jump:
            far[index] = f"seq {envelope.seq} is {envelope.seq - mark} past the boot's highest, {mark}"
    return far
