"""Turn what agents publish into rows: agents, device inventory and state, events, samples, rejected input.

``Ingest.handle_batch`` stores a batch of messages in one transaction and never raises for bad input:
anything that breaks the wire contract is stored in ``rejected`` with the reason, counted, and ingestion goes
on. Every valid message is first claimed by its identity ``(site, agent, boot, seq)`` with a conditional
insert into ``messages``: the database decides that a message is new, so one delivered twice (QoS 1, a
retained copy, or to two collectors sharing a subscription on one PostgreSQL) is applied once. Messages of
one agent are ordered by ``(boot, seq)``, so late deliveries change nothing. Holes in ``seq`` are counted per
agent start and answered with a request to re-publish state (``request_republish``). Ingest records state
only: ticket decisions are the incident engine's.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, insert, update
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from collector.config import IngestConfig
from collector.ingest import agents, checks, devices
from collector.ingest.batch import Batch, Incoming
from collector.ingest.claims import ClaimRacedError, claim
from collector.ingest.enrolment import enrolled
from collector.ingest.gaps import read_boots, track_seq
from collector.ingest.plausibility import implausible, seq_jumps
from collector.ingest.roster import Roster
from collector.ingest.samples import insert_samples
from collector.metrics import Metrics
from collector.store.database import utcnow, write_transaction
from collector.store.incident_queue import touch
from collector.store.schema import agents as agent_table
from collector.store.schema import events
from collector.store.unnest import update_many
from protocol import Envelope

log = logging.getLogger(__name__)

#: What ingest calls, after the commit, once per gap in an agent's seq: ask that agent to publish its state
#: again. The signed command channel plugs in here (``republish-state``).
RequestRepublish = Callable[[str, str], None]


#: The kinds of message that change agents' and devices' rows (through the batch's ``Roster``).
_ROSTER_KINDS = frozenset({"birth", "death", "state"})


class RepublishWanted:
    """The default ``request_republish``: counts and logs that an agent should re-publish its state."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, site: str, agent: str) -> None:
        self._metrics.republish_requested.inc()
        log.info("gap in the messages of %s/%s: its state should be published again", site, agent)


_UPDATE_LAST_SEEN = (
    update(agent_table)
    .where(agent_table.c.site == bindparam("k_site"), agent_table.c.agent == bindparam("k_agent"))
    .values(last_seen=bindparam("k_last"))
)


class Ingest:
    """Validates and stores messages, a batch per transaction; call it from a single thread per engine."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        prefix: str,
        *,
        request_republish: RequestRepublish | None = None,
        settings: IngestConfig | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._checker = checks.Checker(prefix)
        self.settings = settings if settings is not None else IngestConfig()
        #: Where replies to commands go (collector/commands.py); they are not stored otherwise.
        self.on_reply: Callable[[Envelope, datetime], None] | None = None
        self._request_republish = request_republish or RepublishWanted(metrics)

    def handle(
        self,
        topic: str,
        payload: bytes,
        received_at: datetime,
        *,
        retained: bool = False,
        redelivered: bool = False,
    ) -> None:
        """Store one message received on ``topic`` at ``received_at``, or keep it as rejected.

        ``retained``: the broker delivered a retained copy (at a subscribe), which it does again at every
        new subscription; ``redelivered``: the broker delivered it before and had no ack for it (after a
        reconnect, or a broker's restart). Either copy, when bad and already kept in ``rejected`` (same topic
        and payload), is not kept or counted twice.
        """
        self.handle_batch([(topic, payload, received_at, retained)], redelivered=[0] if redelivered else [])

    def handle_batch(self, items: Sequence[Incoming], *, redelivered: Collection[int] = ()) -> None:
        """Store ``items`` in one transaction (all or nothing); raises only when the store fails.

        ``redelivered``: the indexes in ``items`` of messages the broker delivered before (see ``handle``).
        """
        copies = set(redelivered)
        valid: list[tuple[Envelope, datetime, bool]] = []
        # each valid message's topic and payload, and whether it may be a copy, should it be refused later
        raw: list[tuple[str, bytes, bool]] = []
        invalid: list[tuple[str, bytes, str, str, datetime, bool]] = []
        for index, (topic, payload, received_at, retained) in enumerate(items):
            copy = retained or index in copies
            checked = self._checker.check(topic, payload)
            if isinstance(checked, Envelope):
                why = implausible(checked, received_at, self.settings)
                if why is None:
                    valid.append((checked, received_at, retained))
                    raw.append((topic, payload, copy))
                    continue
                checked = (checks.REASON_IMPLAUSIBLE, why)
            invalid.append((topic, payload, checked[0], checked[1], received_at, copy))
        try:
            batch = self._store(valid, raw, invalid, careful=False)
        except ClaimRacedError:
            log.debug("a message taken for new was stored already: the batch again, each claim checked")
            batch = self._store(valid, raw, invalid, careful=True)
        self._after_commit(batch)

    def _store(
        self,
        valid: list[tuple[Envelope, datetime, bool]],
        raw: list[tuple[str, bytes, bool]],
        invalid: list[tuple[str, bytes, str, str, datetime, bool]],
        *,
        careful: bool,
    ) -> Batch:
        """The transaction of ``handle_batch``; ``careful``: see ``claim``."""
        batch = Batch()
        invalid = list(invalid)
        with write_transaction(self._engine) as conn:
            if valid:
                batch.boots = read_boots(conn, ((e.site, e.agent, e.boot) for e, _, _ in valid))
                refused = self._untrusted(conn, valid, batch)
                for index, (reason, error) in sorted(refused.items()):
                    topic, payload, copy = raw[index]
                    invalid.append((topic, payload, reason, error, valid[index][1], copy))
                valid = [item for index, item in enumerate(valid) if index not in refused]
            for topic, payload, reason, error, received_at, copy in invalid:
                if checks.keep(conn, topic, payload, reason, error, received_at, copy=copy):
                    batch.rejected.append(reason)
                else:
                    batch.duplicates += 1
            if valid:
                claim(conn, valid, batch, careful=careful)
                self._apply(conn, batch)
                track_seq(conn, batch)
        return batch

    def _untrusted(
        self, conn: Connection, valid: list[tuple[Envelope, datetime, bool]], batch: Batch
    ) -> dict[int, tuple[str, str]]:
        """The messages (by position in ``valid``) not to believe, with (reason, why): from an agent not
        enrolled (when only enrolled ones are taken), or a ``seq`` too far past its boot's highest."""
        refused: dict[int, tuple[str, str]] = {}
        if self.settings.enrolled_only:
            allowed = enrolled(conn, {(envelope.site, envelope.agent) for envelope, _, _ in valid})
            for index, (envelope, _received, _retained) in enumerate(valid):
                if (envelope.site, envelope.agent) not in allowed:
                    why = f"agent {envelope.site}/{envelope.agent} is not enrolled"
                    refused[index] = (checks.REASON_NOT_ENROLLED, why)
        for index, why in seq_jumps(batch.boots, valid, self.settings).items():
            refused.setdefault(index, (checks.REASON_IMPLAUSIBLE, why))
        return refused

    def prune_rejected(self, now: datetime | None = None) -> int:
        """Forget rejected messages past ``ingest.rejected_keep_days`` or beyond ``rejected_max_rows``."""
        settings = self.settings
        with self._engine.begin() as conn:
            return checks.prune(
                conn,
                now or utcnow(),
                keep_days=settings.rejected_keep_days,
                max_rows=settings.rejected_max_rows,
            )

    def _after_commit(self, batch: Batch) -> None:
        """The database has decided: counters, re-publish requests and replies follow what was stored."""
        live = [envelope.moment for envelope, _, retained in batch.fresh if not retained]
        if live:  # retained copies are old by nature: they say nothing of how far behind ingest is
            self._metrics.ingest_behind.set(max(0.0, (utcnow() - max(live)).total_seconds()))
        for reason in batch.rejected:
            self._metrics.rejected.labels(reason=reason).inc()
        if batch.duplicates:
            self._metrics.duplicates.inc(batch.duplicates)
        kinds = Counter(envelope.kind for envelope, _, _ in batch.fresh)
        for kind, number in kinds.items():
            self._metrics.ingested.labels(kind=kind).inc(number)
        for site, agent in batch.republish:
            self._metrics.gaps.inc()
            try:
                self._request_republish(site, agent)
            except Exception:  # the batch is stored; a failed request must not make it look failed
                log.exception("could not ask %s/%s to publish its states again", site, agent)
        if self.on_reply is not None:
            for envelope, received_at, _retained in batch.fresh:
                if envelope.kind == "reply":
                    self._reply(envelope, received_at)

    def _reply(self, envelope: Envelope, received_at: datetime) -> None:
        """Hand a stored reply to the command tracker; a failure there never undoes the stored batch."""
        assert self.on_reply is not None
        try:
            self.on_reply(envelope, received_at)
        except Exception:  # the reply is stored as a message; its command's row can be fixed by hand
            log.exception(
                "could not apply reply of %s/%s seq %d", envelope.site, envelope.agent, envelope.seq
            )

    def keep_unstorable(self, topic: str, payload: bytes, error: str, received_at: datetime) -> None:
        """Keep a message that could not be stored after retrying as rejected, reason ``store-error``."""
        with self._engine.begin() as conn:
            checks.keep(conn, topic, payload, checks.REASON_STORE, error, received_at)
        self._metrics.rejected.labels(reason=checks.REASON_STORE).inc()

    def _apply(self, conn: Connection, batch: Batch) -> None:
        event_rows: list[dict[str, Any]] = []
        telemetry: list[Envelope] = []
        last_seen: dict[tuple[str, str], datetime] = {}
        named = {(e.site, e.agent) for e, _, _ in batch.fresh if e.kind in _ROSTER_KINDS}
        roster = Roster.load(conn, named) if named else None
        for envelope, received_at, _retained in batch.fresh:
            kind = envelope.kind
            if kind == "telemetry":
                telemetry.append(envelope)
            elif kind == "event":
                event_rows.append(_event_row(envelope, received_at))
            elif kind == "birth":
                assert roster is not None
                agents.birth(roster, envelope, received_at)
                continue
            elif kind == "death":
                assert roster is not None
                agents.death(roster, envelope, received_at)
                continue
            elif kind == "state":
                assert roster is not None
                devices.state(roster, envelope, received_at)
            last_seen[(envelope.site, envelope.agent)] = received_at
        changed = {(r["site"], r["agent"], r["device"]) for r in event_rows if isinstance(r["device"], str)}
        if roster is not None:
            roster.flush(conn)
            changed |= roster.changed()
        if changed:  # the incident engine looks at these devices next, in the order changes came
            touch(conn, changed, max(received_at for _, received_at, _ in batch.fresh))
        if telemetry:
            insert_samples(conn, telemetry)
        if event_rows:
            conn.execute(insert(events), event_rows)
        _write_last_seen(conn, last_seen)


def _write_last_seen(conn: Connection, last_seen: dict[tuple[str, str], datetime]) -> None:
    """When each agent was last heard from: one statement on PostgreSQL, an executemany on SQLite."""
    ordered = sorted(last_seen.items())  # in key order, so writers lock alike
    if not ordered:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(_UPDATE_LAST_SEEN, [{"k_site": k[0], "k_agent": k[1], "k_last": v} for k, v in ordered])
        return
    update_many(
        conn,
        "agents",
        columns=(("site", "varchar"), ("agent", "varchar"), ("last_seen", "timestamptz")),
        keys=("site", "agent"),
        sets={"last_seen": "v.last_seen"},
        rows=[(site, agent, at) for (site, agent), at in ordered],
    )


def _event_row(envelope: Envelope, received_at: datetime) -> dict[str, Any]:
    body = envelope.body
    return {
        "site": envelope.site,
        "agent": envelope.agent,
        "boot": envelope.boot,
        "seq": envelope.seq,
        "ts": envelope.moment,
        "received_at": received_at,
        "device": body.get("device"),
        "type": body["type"],
        "body": body,
    }


def transient(exc: BaseException) -> bool:
    """Whether storing may succeed if tried again: the database away, busy or locked, not the message.

    Anything else (a value the database refuses, an error of ours on one payload) is the message's own, and
    trying it again would only hold up the messages behind it.
    """
    if isinstance(exc, OperationalError | InterfaceError | TimeoutError | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
