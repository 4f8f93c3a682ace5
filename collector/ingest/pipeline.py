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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Row, Table, bindparam, insert, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from collector.incidents.engine import record_transition
from collector.metrics import Metrics
from collector.store.database import write_transaction
from collector.store.schema import agent_boots, agents, devices, events, messages, rejected, samples
from protocol import Envelope, ProtocolError, Topic, Topics, UnsupportedVersionError, decode, parse_ts
from protocol.bodies import validate_against_topic, validate_body

log = logging.getLogger(__name__)

REASON_MALFORMED = "malformed"
REASON_VERSION = "unsupported-version"
REASON_TOPIC = "topic"
REASON_STORE = "store-error"

#: Identities per INSERT statement (6 parameters each).
_IDENTITY_ROWS = 500
_CLAIM_VALUES = "INSERT INTO messages (site, agent, boot, seq, kind, received_at) VALUES "
_CLAIM_POSTGRES = (
    "INSERT INTO messages (site, agent, boot, seq, kind, received_at) SELECT * FROM unnest("
    "%s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[], %s::varchar[], %s::timestamptz[])"
)
_CLAIM_AGAIN = " ON CONFLICT DO NOTHING RETURNING site, agent, boot, seq"

#: How many parsed topics ingest remembers (a plain bound: some five topics per agent).
_PARSED_TOPICS = 100_000

#: A device's reason while its restarted agent has not checked it yet.
RESTART_REASON = "waiting for the first check of the agent's new start"


#: One message as the writer hands it over: topic, payload, when it was received, the broker's retain flag.
Incoming = tuple[str, bytes, datetime, bool]

#: What ingest calls, after the commit, once per gap in an agent's seq: ask that agent to publish its state
#: again. The signed command channel plugs in here (``republish-state``).
RequestRepublish = Callable[[str, str], None]


class RepublishWanted:
    """The default ``request_republish``: counts and logs that an agent should re-publish its state."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def __call__(self, site: str, agent: str) -> None:
        self._metrics.republish_requested.inc()
        log.info("gap in the messages of %s/%s: its state should be published again", site, agent)


def upsert_ignore(conn: Connection, table: Table) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` for the connection's database (SQLite or PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


@dataclass
class _Batch:
    """What one transaction found: new messages in arrival order, and what to do after the commit."""

    received: list[tuple[Envelope, datetime, bool]] = field(default_factory=list)
    fresh: list[tuple[Envelope, datetime, bool]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    duplicates: int = 0
    republish: list[tuple[str, str]] = field(default_factory=list)


_IDENTITY = (messages.c.site, messages.c.agent, messages.c.boot, messages.c.seq)

_UPDATE_BOOT = (
    update(agent_boots)
    .where(
        agent_boots.c.site == bindparam("k_site"),
        agent_boots.c.agent == bindparam("k_agent"),
        agent_boots.c.boot == bindparam("k_boot"),
    )
    .values(
        max_seq=bindparam("k_max"),
        received=agent_boots.c.received + bindparam("k_received"),
        gaps=agent_boots.c.gaps + bindparam("k_gaps"),
        missing=bindparam("k_missing"),
        dropped=agent_boots.c.dropped + bindparam("k_dropped"),
        last_seen=bindparam("k_last"),
    )
)

_UPDATE_LAST_SEEN = (
    update(agents)
    .where(agents.c.site == bindparam("k_site"), agents.c.agent == bindparam("k_agent"))
    .values(last_seen=bindparam("k_last"))
)


def order_key(envelope: Envelope) -> tuple[str, int]:
    """Where a message stands among its agent's messages: ``(boot, seq)``."""
    return (envelope.boot, envelope.seq)


def _status_key(row: Row[Any, Any, Any] | Row[Any, Any, Any, Any] | None) -> tuple[str, int] | None:
    if row is None or row.boot is None or row.status_seq is None:
        return None
    return (row.boot, row.status_seq)


class Ingest:
    """Validates and stores messages, a batch per transaction; call it from a single thread per engine."""

    def __init__(
        self,
        engine: Engine,
        metrics: Metrics,
        prefix: str,
        *,
        request_republish: RequestRepublish | None = None,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._topics = Topics(prefix)
        #: Topics parsed lately (a parsed topic never changes): agents publish on a few topics each.
        self._parsed: dict[str, Topic] = {}
        #: Where replies to commands go (collector/commands.py); they are not stored otherwise.
        self.on_reply: Callable[[Envelope, datetime], None] | None = None
        self._request_republish = request_republish or RepublishWanted(metrics)

    def handle(self, topic: str, payload: bytes, received_at: datetime, *, retained: bool = False) -> None:
        """Store one message received on ``topic`` at ``received_at``, or keep it as rejected.

        ``retained``: the broker delivered a retained copy (at a subscribe), which it does again at every
        new subscription: one already kept in ``rejected`` (same topic and payload) is not kept twice.
        """
        self.handle_batch([(topic, payload, received_at, retained)])

    def handle_batch(self, items: Sequence[Incoming]) -> None:
        """Store ``items`` in one transaction (all or nothing); raises only when the store fails."""
        batch = _Batch()
        valid: list[tuple[Envelope, datetime, bool]] = []
        invalid: list[tuple[str, bytes, str, str, datetime, bool]] = []
        for topic, payload, received_at, retained in items:
            checked = self._check(topic, payload)
            if isinstance(checked, Envelope):
                valid.append((checked, received_at, retained))
            else:
                invalid.append((topic, payload, checked[0], checked[1], received_at, retained))
        with write_transaction(self._engine) as conn:
            for topic, payload, reason, error, received_at, retained in invalid:
                if self._reject(conn, topic, payload, reason, error, received_at, retained=retained):
                    batch.rejected.append(reason)
            if valid:
                self._claim(conn, valid, batch)
                self._apply(conn, batch)
                self._track_seq(conn, batch)
        self._after_commit(batch)

    def _after_commit(self, batch: _Batch) -> None:
        """The database has decided: counters, re-publish requests and replies follow what was stored."""
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

    def _check(self, topic: str, payload: bytes) -> Envelope | tuple[str, str]:
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
        try:
            validate_against_topic(envelope, parsed)
        except ProtocolError as exc:
            return REASON_TOPIC, str(exc)
        return envelope

    def keep_unstorable(self, topic: str, payload: bytes, error: str, received_at: datetime) -> None:
        """Keep a message that could not be stored after retrying as rejected, reason ``store-error``."""
        with self._engine.begin() as conn:
            self._reject(conn, topic, payload, REASON_STORE, error, received_at)
        self._metrics.rejected.labels(reason=REASON_STORE).inc()

    def _reject(  # noqa: PLR0917 - the fields of one rejected row
        self,
        conn: Connection,
        topic: str,
        payload: bytes,
        reason: str,
        error: str,
        received_at: datetime,
        *,
        retained: bool = False,
    ) -> bool:
        """Keep a bad message; False if it is a retained copy already kept."""
        log.debug("rejected message on %s (%s): %s", topic, reason, error)
        if retained:
            kept = select(rejected.c.id).where(rejected.c.topic == topic, rejected.c.payload == payload)
            if conn.execute(kept.limit(1)).first() is not None:
                log.debug("retained message on %s already kept as rejected", topic)
                return False
        conn.execute(
            insert(rejected).values(
                topic=topic, payload=payload, reason=reason, error=error, received_at=received_at
            )
        )
        return True

    # -- identity and gaps ------------------------------------------------------------------------

    def _claim(self, conn: Connection, valid: list[tuple[Envelope, datetime, bool]], batch: _Batch) -> None:
        """Insert each identity unless stored already; ``batch.fresh`` gets the ones this insert won."""
        bind = _driver_value(conn, messages.c.received_at)
        bound: dict[datetime, Any] = {}  # the messages of one frame share their time: convert it once
        seen: set[tuple[str, str, str, int]] = set()
        rows: list[tuple[Any, ...]] = []
        for item in valid:
            envelope, received_at, _retained = item
            identity = (envelope.site, envelope.agent, envelope.boot, envelope.seq)
            if identity in seen:
                batch.duplicates += 1
                continue
            seen.add(identity)
            batch.received.append(item)
            when = bound.get(received_at)
            if when is None:
                when = bound[received_at] = bind(received_at)
            rows.append((*identity, envelope.kind, when))
        lost = self._insert_identities(conn, rows)
        if not lost:  # the common case: every one is new
            batch.fresh.extend(batch.received)
            return
        for item in batch.received:
            envelope = item[0]
            if (envelope.site, envelope.agent, envelope.boot, envelope.seq) in lost:
                batch.duplicates += 1
            else:
                batch.fresh.append(item)

    def _insert_identities(
        self, conn: Connection, rows: list[tuple[Any, ...]]
    ) -> set[tuple[str, str, str, int]]:
        """Insert the identities not stored yet; return those this transaction did not insert.

        ``rows`` are ``(site, agent, boot, seq, kind, received_at)`` as the driver takes them. Each chunk is
        one plain ``INSERT`` of many rows, inside a savepoint: when it succeeds (the common case) every row is
        ours. When it breaks the key (some were stored already, or another collector got there first) the
        savepoint is rolled back and the chunk inserted again with ``ON CONFLICT DO NOTHING RETURNING``, which
        names the rows this transaction won. Either way the database decides. The common case avoids a result
        row per message, which costs a round trip on PostgreSQL and, on SQLite, releases and retakes the GIL
        once per row, and PostgreSQL's speculative insertion for ``ON CONFLICT``, a third of the claim's cost.
        """
        postgres = conn.dialect.name == "postgresql"
        row_marks = "(" + ", ".join(["?"] * 6) + ")"
        lost: set[tuple[str, str, str, int]] = set()
        for start in range(0, len(rows), _IDENTITY_ROWS):
            chunk = rows[start : start + _IDENTITY_ROWS]
            # Driver SQL: SQLAlchemy would compile a statement of many VALUES rows on every call.
            sql: str
            flat: tuple[Any, ...]
            if postgres:
                # One array per column: the same short statement every time, which psycopg parses once
                # (a statement of 3,000 placeholders was parsed again, in Python, at every batch).
                sql = _CLAIM_POSTGRES
                flat = _claim_arrays(chunk)
            else:
                sql = _CLAIM_VALUES + ", ".join([row_marks] * len(chunk))
                flat = tuple(value for row in chunk for value in row)
            savepoint = conn.begin_nested()
            try:
                conn.exec_driver_sql(sql, flat)
            except IntegrityError:
                savepoint.rollback()
            else:
                savepoint.commit()
                continue
            result = conn.exec_driver_sql(sql + _CLAIM_AGAIN, flat)
            won = {(r[0], r[1], r[2], r[3]) for r in result}
            lost.update(identity for identity in (row[:4] for row in chunk) if identity not in won)
        return lost

    def _track_seq(self, conn: Connection, batch: _Batch) -> None:
        """Per agent start, follow the highest seq received live and count the holes below it.

        Retained copies (delivered at a subscribe, out of the live stream) are left out. A new start of an
        agent followed live before is followed from seq 1; otherwise its first live message sets the mark (the
        collector may have subscribed after the start began; ``_starting_marks``). A message
        whose seq jumps past the next one opens a gap of the seqs skipped, except the will named by a birth
        (a will that did not fire leaves that one hole on purpose); a late message fills one.

        A few statements per batch, whatever the number of agents: the rows are created if missing, read
        and locked in one query (sorted, so collectors sharing one database lock in the same order and
        cannot deadlock), and written back in one executemany.
        """
        by_boot: dict[tuple[str, str, str], list[Envelope]] = {}
        first_seen: dict[tuple[str, str, str], datetime] = {}
        for envelope, received_at, retained in batch.fresh:
            if not retained:
                key = (envelope.site, envelope.agent, envelope.boot)
                by_boot.setdefault(key, []).append(envelope)
                first_seen.setdefault(key, received_at)
        if not by_boot:
            return
        keys = sorted(by_boot)
        conn.execute(
            upsert_ignore(conn, agent_boots),
            [
                {
                    "site": k[0],
                    "agent": k[1],
                    "boot": k[2],
                    "first_seen": first_seen[k],
                    "last_seen": first_seen[k],
                }
                for k in keys
            ],
        )
        columns = (agent_boots.c.site, agent_boots.c.agent, agent_boots.c.boot)
        query = (
            select(*columns, agent_boots.c.max_seq, agent_boots.c.missing)
            .where(tuple_(*columns).in_(keys))
            .order_by(*columns)
            .with_for_update()
        )
        stored = {(r.site, r.agent, r.boot): (r.max_seq, r.missing) for r in conn.execute(query)}
        marks = _starting_marks(conn, keys, {key: row[0] for key, row in stored.items()})
        last_seen = max(received_at for _, received_at, _ in batch.fresh)
        updates: list[dict[str, Any]] = []
        for key in keys:
            site, agent, boot = key
            max_seq, missing = marks[key], stored[key][1]
            before, gaps, dropped = missing, 0, 0
            for envelope in by_boot[key]:
                seq = envelope.seq
                reported = envelope.body.get("dropped") if envelope.kind == "birth" else None
                if type(reported) is int and reported > 0:  # a field the contract does not check
                    dropped += reported
                if max_seq is None:
                    max_seq = seq
                elif seq > max_seq:
                    holes = seq - max_seq - 1
                    if envelope.kind == "birth" and max_seq < envelope.body["will_seq"] < seq:
                        holes -= 1
                    if holes > 0:
                        gaps += 1
                        missing += holes
                        log.info(
                            "gap in the messages of %s/%s boot %s: %d missing before seq %d",
                            site,
                            agent,
                            boot,
                            holes,
                            seq,
                        )
                        batch.republish.append((site, agent))
                    max_seq = seq
                else:
                    missing = _late(envelope, missing)
            updates.append(
                {
                    "k_site": site,
                    "k_agent": agent,
                    "k_boot": boot,
                    "k_max": max_seq,
                    "k_received": len(by_boot[key]),
                    "k_gaps": gaps,
                    "k_missing": missing,
                    "k_dropped": dropped,
                    "k_last": last_seen,
                }
            )
            if gaps or missing != before:
                conn.execute(
                    update(agents)
                    .where(agents.c.site == site, agents.c.agent == agent)
                    .values(
                        seq_gaps=agents.c.seq_gaps + gaps,
                        seq_missing=agents.c.seq_missing + (missing - before),
                    )
                )
        conn.execute(_UPDATE_BOOT, updates)

    # -- applying ---------------------------------------------------------------------------------

    def _apply(self, conn: Connection, batch: _Batch) -> None:
        event_rows: list[dict[str, Any]] = []
        telemetry: list[Envelope] = []
        last_seen: dict[tuple[str, str], datetime] = {}
        for envelope, received_at, _retained in batch.fresh:
            kind = envelope.kind
            if kind == "telemetry":
                telemetry.append(envelope)
            elif kind == "event":
                event_rows.append(_event_row(envelope, received_at))
            elif kind == "birth":
                self._birth(conn, envelope, received_at)
                continue
            elif kind == "death":
                self._death(conn, envelope, received_at)
                continue
            elif kind == "state":
                self._state(conn, envelope, received_at)
            last_seen[(envelope.site, envelope.agent)] = received_at
        if telemetry:
            insert_samples(conn, telemetry)
        if event_rows:
            conn.execute(insert(events), event_rows)
        if last_seen:
            conn.execute(
                _UPDATE_LAST_SEEN,
                [{"k_site": k[0], "k_agent": k[1], "k_last": v} for k, v in sorted(last_seen.items())],
            )

    # -- agents -----------------------------------------------------------------------------------
    #
    # The order of two messages of one agent is (boot, seq): boot ids sort as strings in start order and
    # seq strictly increases within a boot (docs/protocol.md). The agent's clock orders nothing. Keys are
    # compared here in Python, not in SQL, so a database collation cannot change the order.

    def _birth(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        site, agent = envelope.site, envelope.agent
        key = (agents.c.site == site, agents.c.agent == agent)
        row = conn.execute(
            select(agents.c.online, agents.c.boot, agents.c.status_seq).where(*key).with_for_update()
        ).first()
        stored = _status_key(row)
        if stored is not None and order_key(envelope) <= stored:
            log.debug(
                "ignored birth %s of %s/%s: not newer than %s", order_key(envelope), site, agent, stored
            )
            return
        values: dict[str, Any] = {
            "online": True,
            "boot": envelope.boot,
            "status_seq": envelope.seq,
            "version": body["version"],
            "hostname": body.get("hostname") if isinstance(body.get("hostname"), str) else None,
            "will_seq": body["will_seq"],
            "last_seen": received_at,
        }
        if row is None:
            conn.execute(
                insert(agents).values(site=site, agent=agent, status_changed_at=received_at, **values)
            )
        else:
            if not row.online:
                values["status_changed_at"] = received_at
            conn.execute(update(agents).where(*key).values(**values))
        if row is None or not row.online:
            log.info("agent %s/%s online (version %s)", site, agent, body["version"])
        if stored is None or envelope.boot > stored[0]:
            self._forget_previous_boot(conn, envelope, received_at)
        listed = set()
        for item in body["devices"]:
            listed.add(item["id"])
            inventory = {name: item.get(name) for name in ("model", "serial", "name", "room", "contract")}
            self._upsert_inventory(
                conn, site, agent, item["id"], inventory=inventory, received_at=received_at
            )
        self._retire_unlisted(conn, site, agent, listed, received_at)

    def _forget_previous_boot(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        """A restarted agent: what its previous start said about its devices is stale.

        Without this a device left ``down`` by an agent that was killed, then repaired while the agent was
        away, would be ticketed at once when the agent comes back. Devices that already have a state from
        the new start (retained messages arrive in any order across topics) keep it.
        """
        site, agent, boot = envelope.site, envelope.agent, envelope.boot
        where = (devices.c.site == site, devices.c.agent == agent)
        rows = conn.execute(
            select(devices.c.device, devices.c.state, devices.c.state_boot).where(*where)
        ).all()
        for row in rows:
            if row.state_boot is not None and row.state_boot >= boot:
                continue
            conn.execute(
                update(devices)
                .where(*where, devices.c.device == row.device)
                .values(
                    state="unknown",
                    state_reason=RESTART_REASON,
                    state_since=received_at,
                    checks=None,
                    down_since=None,
                    updated_at=received_at,
                )
            )
            if row.state != "unknown":
                log.info("device %s/%s/%s %s -> unknown: agent restarted", site, agent, row.device, row.state)

    def _retire_unlisted(
        self, conn: Connection, site: str, agent: str, listed: set[str], received_at: datetime
    ) -> None:
        where = (devices.c.site == site, devices.c.agent == agent, devices.c.retired_at.is_(None))
        for name in conn.execute(select(devices.c.device).where(*where)).scalars().all():
            if name not in listed:
                conn.execute(
                    update(devices).where(*where, devices.c.device == name).values(retired_at=received_at)
                )
                log.info("device %s/%s/%s retired: no longer in the agent's inventory", site, agent, name)

    def _death(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        # A will's ts is when it was registered, not when the agent died: the receive time is the moment.
        site, agent = envelope.site, envelope.agent
        key = (agents.c.site == site, agents.c.agent == agent)
        row = conn.execute(
            select(agents.c.online, agents.c.boot, agents.c.status_seq, agents.c.will_seq)
            .where(*key)
            .with_for_update()
        ).first()
        values: dict[str, Any] = {"online": False, "last_seen": received_at, "status_changed_at": received_at}
        if row is None:
            values.update(boot=envelope.boot, status_seq=envelope.seq)
            conn.execute(insert(agents).values(site=site, agent=agent, **values))
            return
        stored = _status_key(row)
        newer = stored is None or order_key(envelope) > stored
        # The will of the current connection was given its seq before the birth, so it is lower than the
        # birth's; the birth's will_seq names it. A will of an earlier connection or boot is stale.
        current_will = row.boot == envelope.boot and row.will_seq == envelope.seq
        if not (newer or current_will):
            log.debug("ignored stale death %s of %s/%s", order_key(envelope), site, agent)
            return
        if newer:
            values.update(boot=envelope.boot, status_seq=envelope.seq)
        if row.online:
            conn.execute(update(agents).where(*key).values(**values))
            log.info("agent %s/%s offline (%s)", site, agent, envelope.body.get("reason"))
        elif newer:
            conn.execute(update(agents).where(*key).values(boot=envelope.boot, status_seq=envelope.seq))

    # -- devices ----------------------------------------------------------------------------------

    def _upsert_inventory(
        self,
        conn: Connection,
        site: str,
        agent: str,
        device: str,
        *,
        inventory: dict[str, Any],
        received_at: datetime,
    ) -> None:
        key = (devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
        row = conn.execute(select(devices.c.retired_at).where(*key)).first()
        if row is None:
            _insert_device(conn, site, agent, device, received_at, **inventory)
            return
        if row.retired_at is not None:
            log.info("device %s/%s/%s is back in the agent's inventory", site, agent, device)
        conn.execute(update(devices).where(*key).values(updated_at=received_at, retired_at=None, **inventory))

    def _state(self, conn: Connection, envelope: Envelope, received_at: datetime) -> None:
        body = envelope.body
        site, agent, device = envelope.site, envelope.agent, body["device"]
        key = (devices.c.site == site, devices.c.agent == agent, devices.c.device == device)
        agent_row = conn.execute(
            select(agents.c.boot, agents.c.version).where(agents.c.site == site, agents.c.agent == agent)
        ).first()
        if agent_row is not None and agent_row.boot is not None and envelope.boot < agent_row.boot:
            log.debug("ignored state of %s/%s/%s from an earlier boot", site, agent, device)
            return  # from a start of the agent before its current one
        query = select(devices.c.state, devices.c.state_boot, devices.c.state_seq, devices.c.down_since)
        row = conn.execute(query.where(*key).with_for_update()).first()
        if row is None:
            # Not in an inventory yet. If the agent's current birth is already applied, it did not list the
            # device: keep the state, but as a retired device, which gets no ticket.
            # A state of a newer boot than the birth applied (its own birth has not arrived yet) says nothing
            # about the inventory: the new birth decides.
            current_birth = (
                agent_row is not None and agent_row.version is not None and envelope.boot == agent_row.boot
            )
            retired = received_at if current_birth else None
            _insert_device(conn, site, agent, device, received_at, retired_at=retired)
            previous_state, previous_down_since = "unknown", None
        else:
            if row.state_boot is not None and order_key(envelope) <= (row.state_boot, row.state_seq):
                return  # not newer than the state applied: a late retained copy or a reordered delivery
            previous_state, previous_down_since = row.state, row.down_since
        new_state: str = body["state"]
        since = parse_ts(body["since"])
        down_since = None
        if new_state == "down":
            down_since = previous_down_since if previous_state == "down" else None
            if down_since is None:
                # ts and since are both the agent's clock: their difference is free of clock skew.
                down_since = received_at - max(timedelta(0), envelope.moment - since)
        conn.execute(
            update(devices)
            .where(*key)
            .values(
                state=new_state,
                state_since=since,
                state_reason=body["reason"],
                checks=body["checks"],
                state_ts=envelope.moment,
                state_boot=envelope.boot,
                state_seq=envelope.seq,
                down_since=down_since,
                updated_at=received_at,
            )
        )
        if new_state != previous_state:
            # When it changed, by the agent's clock but never later than now: a backlog delivered at once
            # after an outage keeps its spacing, so hours of changes do not look like a device flapping.
            record_transition(
                conn, site, agent, device, before=previous_state, after=new_state, at=min(since, received_at)
            )
            log.info(
                "device %s/%s/%s %s -> %s: %s", site, agent, device, previous_state, new_state, body["reason"]
            )


def _insert_device(
    conn: Connection, site: str, agent: str, device: str, received_at: datetime, **values: Any
) -> None:
    """A device row seen for the first time; its state is unknown until one is applied."""
    conn.execute(
        insert(devices).values(
            site=site, agent=agent, device=device, state="unknown", updated_at=received_at, **values
        )
    )


def _late(envelope: Envelope, missing: int) -> int:
    """``missing`` once ``envelope``, below the highest seq received, has arrived. It fills its own hole, and
    a late birth that of its will too (the jump past them counted both; a will that did not fire leaves its
    hole on purpose). A late will fills none: its birth excused it."""
    if envelope.kind == "death":
        return missing
    filled = 2 if envelope.kind == "birth" and envelope.body["will_seq"] < envelope.seq else 1
    return max(0, missing - filled)


def _starting_marks(
    conn: Connection, keys: list[tuple[str, str, str]], max_seqs: dict[tuple[str, str, str], int | None]
) -> dict[tuple[str, str, str], int | None]:
    """The highest seq each boot had before this batch, or None: follow from its first message received.

    A boot seen for the first time starts at 0 when its agent is one this collector has followed live
    before: its session was there when the boot began, so every message from seq 1 on should arrive, and the
    ones before the first received are missing (lost in the broker, say). For an agent never seen live the
    collector may have subscribed after the boot began, and the first message received sets the mark.
    ``keys`` are sorted, so a later boot of an agent new in this batch counts as a new start too.
    """
    marks = dict(max_seqs)
    new = sorted({(site, agent) for site, agent, boot in keys if max_seqs[(site, agent, boot)] is None})
    if not new:
        return marks
    followed = tuple_(agent_boots.c.site, agent_boots.c.agent)
    query = (
        select(agent_boots.c.site, agent_boots.c.agent)
        .where(followed.in_(new), agent_boots.c.max_seq.is_not(None))
        .distinct()
    )
    known = {(row.site, row.agent) for row in conn.execute(query)}
    for key in keys:
        if marks[key] is None and key[:2] in known:
            marks[key] = 0
        known.add(key[:2])
    return marks


def _claim_arrays(rows: list[tuple[Any, ...]]) -> tuple[str, ...]:
    """The claim's six columns as PostgreSQL array literals, for ``_CLAIM_POSTGRES``.

    Written here in one join per column: psycopg adapts a list element by element in Python, which cost more
    than the rest of the claim. Every element is double-quoted (so an agent named ``null`` stays a name), and
    none can hold a quote or a backslash: site, agent and boot are ids, kind one of the protocol's words, seq
    an integer and the time an ISO 8601 text.
    """
    sites, agents_, boots, seqs, kinds, times = zip(*rows, strict=True)
    stamps: dict[datetime, str] = {}
    for moment in times:
        if moment not in stamps:
            stamps[moment] = moment.isoformat()
    return (
        _text_array(sites),
        _text_array(agents_),
        _text_array(boots),
        "{" + ",".join(map(str, seqs)) + "}",
        _text_array(kinds),
        _text_array([stamps[moment] for moment in times]),
    )


def _text_array(values: Sequence[str]) -> str:
    return '{"' + '","'.join(values) + '"}'


def _add_sample_rows(rows: list[tuple[Any, ...]], envelope: Envelope) -> None:
    site, agent, boot, seq = envelope.site, envelope.agent, envelope.boot, envelope.seq
    rows.extend(
        [
            (site, agent, boot, seq, index, item["device"], item["metric"], float(item["value"]), item["ts"])
            for index, item in enumerate(envelope.body["samples"])
        ]
    )


_SAMPLE_COLUMNS = "site, agent, boot, seq, idx, device, metric, value, ts"
#: Rows per INSERT statement on SQLite (9 parameters each; SQLite allows 32,766 per statement).
_SQLITE_ROWS = 1000


def _driver_value(conn: Connection, column: Any) -> Callable[[Any], Any]:
    """What the driver is handed for a value of ``column``: its type's bind processor, then, on SQLite, the
    adapter sqlite3 would apply itself (datetime -> text), so that a value shared by many rows is converted
    once instead of once per row."""
    bind = column.type.bind_processor(conn.dialect)
    adapt = None
    if conn.dialect.name == "sqlite":
        import sqlite3

        adapters: dict[tuple[type, type], Callable[[Any], Any]] = sqlite3.adapters
        adapt = adapters.get((datetime, sqlite3.PrepareProtocol))

    def convert(value: Any) -> Any:
        if bind is not None:
            value = bind(value)
        if adapt is not None and type(value) is datetime:
            value = adapt(value)
        return value

    return convert


def insert_samples(conn: Connection, telemetry: list[Envelope]) -> None:
    """Insert the samples of these telemetry messages the fast way for the database.

    The hot path of ingest: thousands of rows per batch. SQLAlchemy's per-row parameter processing costs more
    than the insert itself, so rows go to the driver directly: ``COPY`` on PostgreSQL, multi-row INSERTs on
    SQLite, with ``ts`` converted by the column type's own bind processor and, on SQLite, sqlite3's own
    adapter, once per distinct value (the stored form stays the one SQLAlchemy reads back). Only rows of
    messages this transaction claimed get here, so no key conflicts.
    """
    bind = _driver_value(conn, samples.c.ts)
    seen: dict[str, Any] = {}  # the samples of one poll share their time: convert each text once

    def moment(text: str) -> Any:
        value = seen.get(text)
        if value is None:
            value = seen[text] = bind(parse_ts(text))
        return value

    if conn.dialect.name == "postgresql":
        _copy_samples(conn, telemetry, moment)
        return
    rows: list[tuple[Any, ...]] = []
    for envelope in telemetry:
        _add_sample_rows(rows, envelope)
    # Many rows per statement, not executemany: sqlite3 releases the GIL around every step, and each time the
    # network thread takes it, the writer waits for it again (a convoy that costs more than the inserts).
    for start in range(0, len(rows), _SQLITE_ROWS):
        chunk = rows[start : start + _SQLITE_ROWS]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        flat: list[Any] = []
        for row in chunk:
            flat += row
            flat[-1] = moment(row[8])
        conn.exec_driver_sql(f"INSERT INTO samples ({_SAMPLE_COLUMNS}) VALUES {values}", tuple(flat))  # noqa: S608


#: COPY's text format: these four characters are written as escapes (a NUL is refused by PostgreSQL anyway).
#: Messages whose samples go to the server in one write of a COPY.
_COPY_PART = 100
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_samples(conn: Connection, telemetry: list[Envelope], moment: Callable[[str], Any]) -> None:
    """``COPY samples`` in PostgreSQL's text format, the whole batch formatted in one pass.

    Site, agent, boot and device are ids (letters, digits, ``_``, ``-``), seq and idx integers and value a
    float (``repr`` reads back exactly, ``nan`` and ``inf`` included), so only the metric name, free text of
    the agent's, can hold a character COPY reads as syntax; it is escaped, once per distinct name. Formatting
    here costs a fifth of psycopg's ``write_row`` per row, which adapts every value of every row on its own.
    """
    metrics: dict[str, str] = {}
    stamps: dict[str, str] = {}
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY samples ({_SAMPLE_COLUMNS}) FROM STDIN") as copy:
            # Sent a part at a time: the server stores one part while the next is formatted.
            for start in range(0, len(telemetry), _COPY_PART):
                lines: list[str] = []
                for envelope in telemetry[start : start + _COPY_PART]:
                    prefix = f"{envelope.site}\t{envelope.agent}\t{envelope.boot}\t{envelope.seq}\t"
                    for idx, item in enumerate(envelope.body["samples"]):
                        metric = item["metric"]
                        name = metrics.get(metric)
                        if name is None:
                            name = metrics[metric] = metric.translate(_COPY_ESCAPES)
                        ts = item["ts"]
                        stamp = stamps.get(ts)
                        if stamp is None:
                            stamp = stamps[ts] = moment(ts).isoformat()
                        value = float(item["value"])
                        lines.append(f"{prefix}{idx}\t{item['device']}\t{name}\t{value!r}\t{stamp}\n")
                copy.write("".join(lines))
    finally:
        cursor.close()


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
