"""Bad input never stops ingest: a message whose topic, envelope or body breaks the wire contract is refused
with a reason, kept in ``rejected`` and counted, and the batch goes on."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, insert, select

from collector.store.schema import rejected
from protocol import Envelope, ProtocolError, Topic, Topics, UnsupportedVersionError, decode
from protocol.bodies import validate_against_topic, validate_body

log = logging.getLogger(__name__)

REASON_MALFORMED = "malformed"
REASON_VERSION = "unsupported-version"
REASON_TOPIC = "topic"
REASON_STORE = "store-error"
REASON_IMPLAUSIBLE = "implausible"
REASON_NOT_ENROLLED = "not-enrolled"

#: How many parsed topics ingest remembers (a plain bound: some five topics per agent).
_PARSED_TOPICS = 100_000


class Checker:
    """Checks messages against the wire contract; remembers the topics it parsed lately."""

    def __init__(self, prefix: str) -> None:
        self._topics = Topics(prefix)
        #: Topics parsed lately (a parsed topic never changes): agents publish on a few topics each.
        self._parsed: dict[str, Topic] = {}

    def check(self, topic: str, payload: bytes) -> Envelope | tuple[str, str]:
        """The envelope, or (reason, error) for ``rejected``."""
        parsed = self._parsed.get(topic)
        if parsed is None:
            try:
                parsed = self._topics.parse(topic)
            except ProtocolError as exc:
                return REASON_TOPIC, str(exc)
            if len(self._parsed) >= _PARSED_TOPICS:
                self._parsed.clear()
            self._parsed[topic] = parsed
        try:
            envelope = decode(payload)
            validate_body(envelope)
        except UnsupportedVersionError as exc:
            return REASON_VERSION, str(exc)
        except ProtocolError as exc:
            return REASON_MALFORMED, str(exc)
        except Exception as exc:
            log.exception("checking a message on %s failed", topic)
            return REASON_MALFORMED, f"could not be checked: {type(exc).__name__}"
        try:
            validate_against_topic(envelope, parsed)
        except ProtocolError as exc:
            return REASON_TOPIC, str(exc)
        return envelope


def keep(  # noqa: PLR0917 - the fields of one rejected row
    conn: Connection,
    topic: str,
    payload: bytes,
    reason: str,
    error: str,
    received_at: datetime,
    *,
    copy: bool = False,
) -> bool:
    """Keep a bad message; False if it is a copy (retained, or redelivered) of one already kept."""
    log.debug("rejected message on %s (%s): %s", topic, reason, error)
    digest = hashlib.sha256(payload).hexdigest()
    if copy:
        kept = select(rejected.c.id).where(rejected.c.topic == topic, rejected.c.payload_sha256 == digest)
        if conn.execute(kept.limit(1)).first() is not None:
            log.debug("copy of a message on %s already kept as rejected", topic)
            return False
    conn.execute(
        insert(rejected).values(
            topic=topic,
            payload=payload,
            payload_sha256=digest,
            reason=reason,
            error=error,
            received_at=received_at,
        )
    )
    return True


def prune(conn: Connection, now: datetime, *, keep_days: float, max_rows: int) -> int:
    """Forget rejected messages older than ``keep_days``, and the oldest beyond ``max_rows``; how many."""
    gone = conn.execute(
        delete(rejected).where(rejected.c.received_at < now - timedelta(days=keep_days))
    ).rowcount
    newest_dropped = conn.execute(
        select(rejected.c.id).order_by(rejected.c.id.desc()).offset(max_rows).limit(1)
    ).scalar()
    if newest_dropped is not None:
        gone += conn.execute(delete(rejected).where(rejected.c.id <= newest_dropped)).rowcount
    return int(gone)
