"""The incident engine: every ticket decision, taken at each evaluation (docs/collector.md, the ticket rule).

Ingest only records what agents say; this engine, run by the same single writer thread, then:

1. closes the ``open`` or ``recovered`` ticket of a device retired from its agent's inventory: nobody
   watches it any more, so nothing would ever recover or close it;
2. marks ``recovered`` the ``open`` ticket of a device that is ``up`` again;
3. closes a ``recovered`` ticket whose device has had no fault for ``reopen_window`` seconds, so the next
   fault gets a new ticket with fresh deadlines; not while the device is ``down`` again (not confirmed yet,
   or its agent is offline): that fault may still reopen it;
4. for a device ``down`` for at least ``confirm_window`` seconds, behind an online agent, in that agent's
   inventory (not retired): reopens its ``recovered`` ticket (entry ``down-again``) or, with no ticket still
   open, opens a Critical one whose first response is due ``critical_response_hours`` later (24x7, so plain
   addition). A device behind an offline agent gets no ticket: nothing is known about it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, delete, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.config import IncidentsConfig
from collector.metrics import Metrics
from collector.registry import contracts, maintenance
from collector.sla.terms import SlaContext, SlaPolicy, TicketTimes, deadlines
from collector.store.database import utcnow
from collector.store.schema import (
    ACTIVE_STATUSES,
    CAUSE_AGENT_SILENT,
    CAUSE_DEVICE_DOWN,
    CAUSE_DEVICE_UNSTABLE,
    agents,
    device_conditions,
    device_transitions,
    devices,
    events,
)
from collector.store.schema import tickets as ticket_table

log = logging.getLogger(__name__)

#: Device events added to the timeline of the device's active tickets.
NOTED_EVENTS = frozenset({"reboot", "firmware-changed"})

#: The ``closed`` entry of a ticket whose device was retired.
RETIRED_TEXT = "Device removed from the agent's inventory."


@dataclass
class Evaluation:
    """What one evaluation did, by ticket number."""

    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    #: Devices confirmed down but held back, with why: ``(site, agent, device) -> reason``.
    held: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: Deadlines newly missed: ``(ticket number, deadline)``.
    breached: list[tuple[str, str]] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)


@dataclass
class Signs:
    """Signs of instability, per device: recent drops and reboots, and when running conditions started."""

    drops: dict[tuple[str, str, str], int]
    reboots: dict[tuple[str, str, str], int]
    conditions: dict[tuple[str, str, str, str], datetime]
    #: When the device's latest High ticket was closed: older signs have been dealt with.
    closed: dict[tuple[str, str, str], datetime]


@dataclass
class Holds:
    """What holds tickets back at one evaluation: silent agents, maintenance windows, contracts."""

    silent: dict[tuple[str, str], str]  # (site, agent) -> why it is silent
    silent_since: dict[tuple[str, str], datetime]
    stale: set[tuple[str, str]]  # online, but no message for heartbeat_timeout
    windows: list[maintenance.Window]
    registry: contracts.Registry


class IncidentEngine:
    """Evaluates the ticket rule over the store; ``now`` is injectable so tests control time."""

    def __init__(
        self,
        engine: Engine,
        *,
        confirm_window: float,
        critical_response_hours: float | None = None,
        reopen_window: float = 86400.0,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
        on_ticket_opened: Callable[[str], None] | None = None,
        rules: IncidentsConfig | None = None,
        context: SlaContext | None = None,
    ) -> None:
        self._engine = engine
        self._on_ticket_opened = on_ticket_opened
        self._confirm = timedelta(seconds=confirm_window)
        self._reopen = timedelta(seconds=reopen_window)
        self._metrics = metrics
        self._now = now
        self.rules = rules if rules is not None else IncidentsConfig(confirm_window=confirm_window)
        context = context if context is not None else SlaContext.default()
        if critical_response_hours is not None:
            critical = context.policy.of("critical")
            policy = SlaPolicy(
                {
                    **context.policy.priorities,
                    "critical": replace(critical, response_hours=critical_response_hours),
                },
                context.policy.warn_before,
                context.policy.return_days,
            )
            context = SlaContext(policy, context.calendars)
        self.context = context
        self._pruned_at: datetime | None = None
        self._event_cursor: int | None = None
        self.last = Evaluation()

    def evaluate(self) -> list[str]:
        """Take every ticket decision due now; return the numbers of the tickets opened (``last`` has all)."""
        now = self._now()
        done = Evaluation()
        with self._engine.begin() as conn:
            self._close_retired(conn, now, done)
            self._recover(conn, now, done)
            self._close(conn, now, done)
            holds = self._holds(conn, now)
            self._site_incidents(conn, now, holds, done)
            candidates = conn.execute(self._candidates(now)).all()
            ticketed = {
                (row.site, row.agent, row.device)
                for row in conn.execute(
                    select(ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device).where(
                        ticket_table.c.cause == CAUSE_DEVICE_DOWN,
                        ticket_table.c.status.in_(ACTIVE_STATUSES),
                        ticket_table.c.status != "recovered",
                    )
                )
            }
            closed = _last_closed(conn, CAUSE_DEVICE_DOWN)
        for device in candidates:
            key = (device.site, device.agent, device.device)
            if key in ticketed:
                continue  # its ticket is open already: nothing to decide
            if key in closed and device.down_since <= closed[key]:
                continue  # an engineer closed the ticket of this very outage: it must end and recur first
            if self._held(holds, device, now, done) is None:
                self._confirmed_down(device, now, done)
        self._unstable(now, holds, done)
        with self._engine.begin() as conn:
            self._note_events(conn, now)
            self._sla(conn, now, done)
            self._prune(conn, now)
        self.last = done
        return done.opened

    # -- the decisions ----------------------------------------------------------------------------

    def _close_retired(self, conn: Connection, now: datetime, done: Evaluation) -> None:
        query = _tickets_with_devices(
            ticket_table.c.status.in_(ACTIVE_STATUSES),
            devices.c.retired_at.is_not(None),
        )
        for row in conn.execute(query).all():
            tickets.close(conn, row.id, now)
            tickets.add_entry(conn, row.id, now, "closed", RETIRED_TEXT)
            done.closed.append(row.number)
            log.info(
                "ticket %s closed: device %s/%s/%s removed from the agent's inventory",
                row.number,
                row.site,
                row.agent,
                row.device,
            )

    def _recover(self, conn: Connection, now: datetime, done: Evaluation) -> None:
        query = _tickets_with_devices(
            ticket_table.c.status.in_(("open", "responded")),
            ticket_table.c.cause == CAUSE_DEVICE_DOWN,
            devices.c.state == "up",
        )
        for row in conn.execute(query).all():
            tickets.set_status(conn, row.id, "recovered", recovered_at=now)
            tickets.add_entry(conn, row.id, now, "recovered", f"Device {row.device} is up again.")
            done.recovered.append(row.number)
            log.info(
                "ticket %s recovered: device %s/%s/%s is up", row.number, row.site, row.agent, row.device
            )

    def _close(self, conn: Connection, now: datetime, done: Evaluation) -> None:
        table = ticket_table
        query = (
            select(table.c.id, table.c.number)
            .outerjoin(devices, _same_device())
            # A device down again, not confirmed yet (or behind an offline agent), keeps its ticket: if the
            # fault is confirmed, the ticket is reopened rather than a new one opened.
            .where(
                table.c.status == "recovered",
                table.c.recovered_at.is_not(None),
                table.c.recovered_at <= now - self._reopen,
                or_(devices.c.state.is_(None), devices.c.state != "down"),
            )
        )
        hours = self._reopen.total_seconds() / 3600
        for row in conn.execute(query).all():
            tickets.close(conn, row.id, now)
            tickets.add_entry(conn, row.id, now, "closed", f"No fault for {hours:g} h after recovery.")
            done.closed.append(row.number)
            log.info("ticket %s closed: no fault for %g h after recovery", row.number, hours)

    def _candidates(self, now: datetime) -> Any:
        return (
            select(devices)
            .join(agents, and_(agents.c.site == devices.c.site, agents.c.agent == devices.c.agent))
            .where(
                devices.c.state == "down",
                devices.c.down_since.is_not(None),
                devices.c.down_since <= now - self._confirm,
                devices.c.retired_at.is_(None),
                agents.c.online.is_(True),
            )
            .order_by(devices.c.down_since)
        )

    def _confirmed_down(self, device: Row[Any], now: datetime, done: Evaluation) -> None:
        site: str = device.site
        agent: str = device.agent
        name: str = device.device
        down_since: datetime = device.down_since
        try:
            with self._engine.begin() as conn:
                # Read again inside the writing transaction: the device must still be down since the same
                # moment, not retired, behind an online agent.
                still = conn.execute(
                    self._candidates(now).where(
                        devices.c.site == site,
                        devices.c.agent == agent,
                        devices.c.device == name,
                        devices.c.down_since == down_since,
                    )
                ).first()
                if still is None:
                    return
                ticket = tickets.find_open(conn, site, agent, name, CAUSE_DEVICE_DOWN)
                if ticket is not None:
                    if ticket.status == "recovered":
                        status = "open" if ticket.responded_at is None else "responded"
                        tickets.set_status(conn, ticket.id, status, recovered_at=None)
                        tickets.add_entry(
                            conn,
                            ticket.id,
                            now,
                            "down-again",
                            f"Device {name} is down again: {still.state_reason}",
                        )
                        done.reopened.append(ticket.number)
                        log.info(
                            "ticket %s reopened: device %s/%s/%s is down again",
                            ticket.number,
                            site,
                            agent,
                            name,
                        )
                    return
                number = tickets.open_ticket(
                    conn,
                    site=site,
                    agent=agent,
                    device=name,
                    model=still.model,
                    serial=still.serial,
                    contract=still.contract,
                    room=still.room,
                    priority=tickets.PRIORITY_CRITICAL,
                    cause=CAUSE_DEVICE_DOWN,
                    opened_at=now,
                    response_due=self._response_due(site, tickets.PRIORITY_CRITICAL, now),
                    evidence=still.checks,
                    text=_opened_text(still, down_since),
                )
        except IntegrityError:
            return  # another writer opened it first; the unique index kept it to one
        done.opened.append(number)
        self._count_opened(tickets.PRIORITY_CRITICAL)
        log.info(
            "ticket %s opened: critical, device %s/%s/%s down since %s",
            number,
            site,
            agent,
            name,
            down_since.isoformat(),
        )
        if self._on_ticket_opened is not None:  # automatic evidence (collector/commands.py)
            try:
                self._on_ticket_opened(number)
            except Exception:
                log.exception("on_ticket_opened failed for ticket %s", number)

    # -- holds: silent agents, maintenance windows, contracts --------------------------------------

    def _response_due(self, site: str, priority: str, now: datetime) -> datetime:
        times = TicketTimes(priority, "open", now)
        return deadlines(self.context.policy, self.context.calendars[site], times).response_due

    def _holds(self, conn: Connection, now: datetime) -> Holds:
        silent_after = timedelta(seconds=self.rules.agent_silent_after)
        heartbeat = self.rules.heartbeat_timeout
        silent: dict[tuple[str, str], str] = {}
        since: dict[tuple[str, str], datetime] = {}
        stale: set[tuple[str, str]] = set()
        for row in conn.execute(select(agents)).all():
            key = (row.site, row.agent)
            changed = row.status_changed_at or row.last_seen
            if not row.online:
                if changed is not None and changed <= now - silent_after:
                    silent[key] = f"offline since {changed.isoformat()}"
                    since[key] = changed
            elif (
                heartbeat is not None
                and row.last_seen is not None
                and row.last_seen <= now - timedelta(seconds=heartbeat)
            ):
                stale.add(key)
                silent[key] = f"no message since {row.last_seen.isoformat()}"
                since[key] = row.last_seen
        return Holds(silent, since, stale, maintenance.load(conn), contracts.Registry.load(conn))

    def _window(
        self, holds: Holds, now: datetime, site: str, agent: str | None, device: str | None
    ) -> str | None:
        window = maintenance.holding(
            holds.windows, self.context.calendars, now, site=site, agent=agent, device=device
        )
        return None if window is None else f"maintenance window {window.name}"

    def _held(self, holds: Holds, device: Row[Any], now: datetime, done: Evaluation) -> str | None:
        """Why ``device`` gets no automatic ticket now, or None (also noted in ``done.held``)."""
        key = (device.site, device.agent, device.device)
        reason = None
        if (device.site, device.agent) in holds.stale:
            reason = "its agent is silent"
        if reason is None:
            reason = self._window(holds, now, *key)
        if reason is None:
            today = self.context.calendars[device.site].local(now).date()
            cover = holds.registry.coverage(
                device.contract, device.serial, today, self.rules.contract_warning_days
            )
            hold_unregistered = self.rules.unregistered_contract == "hold"
            if cover.state not in contracts.COVERED and (
                cover.state != contracts.UNREGISTERED or hold_unregistered
            ):
                reason = cover.warning
        if reason is not None:
            done.held[key] = reason
        return reason

    # -- site incidents: silent agents ------------------------------------------------------------

    def _site_incidents(self, conn: Connection, now: datetime, holds: Holds, done: Evaluation) -> None:
        by_site: dict[str, list[str]] = {}
        latest: dict[str, datetime] = {}  # per site, when its latest silence started
        for (site, agent), why in sorted(holds.silent.items()):
            if self._window(holds, now, site, agent, None) is None:
                by_site.setdefault(site, []).append(f"{agent} ({why})")
                started = holds.silent_since[(site, agent)]
                latest[site] = max(latest.get(site, started), started)
        for site, silent in by_site.items():
            ticket = tickets.find_open(conn, site, "", "", CAUSE_AGENT_SILENT)
            text = f"Agents silent at site {site}: {', '.join(silent)}. No device tickets meanwhile."
            if ticket is None and self._closed_during(conn, site, latest[site]):
                continue  # an engineer closed the incident of this very silence: no new one until it changes
            if ticket is None:
                priority = self.rules.site_priority
                number = tickets.open_ticket(
                    conn,
                    site=site,
                    agent="",
                    device="",
                    model=None,
                    serial=None,
                    contract=None,
                    room=None,
                    priority=priority,
                    cause=CAUSE_AGENT_SILENT,
                    opened_at=now,
                    response_due=self._response_due(site, priority, now),
                    evidence={"silent": silent},
                    text=text,
                    summary=f"site {site}: agents silent",
                )
                done.opened.append(number)
                self._count_opened(priority)
                log.info("ticket %s opened: %s, %s", number, priority, text)
            elif ticket.status == "recovered":
                status = "open" if ticket.responded_at is None else "responded"
                tickets.set_status(conn, ticket.id, status, recovered_at=None)
                tickets.add_entry(conn, ticket.id, now, "silent-again", text)
                done.reopened.append(ticket.number)
                log.info("ticket %s reopened: %s", ticket.number, text)
        query = select(ticket_table).where(
            ticket_table.c.cause == CAUSE_AGENT_SILENT, ticket_table.c.status.in_(("open", "responded"))
        )
        for ticket in conn.execute(query).all():
            if ticket.site not in by_site:
                tickets.set_status(conn, ticket.id, "recovered", recovered_at=now)
                tickets.add_entry(
                    conn, ticket.id, now, "recovered", f"Every agent of site {ticket.site} is back."
                )
                done.recovered.append(ticket.number)
                log.info("ticket %s recovered: every agent of site %s is back", ticket.number, ticket.site)

    def _closed_during(self, conn: Connection, site: str, silence_started: datetime) -> bool:
        """Whether a site incident opened after ``silence_started`` has been closed already."""
        query = select(ticket_table.c.id).where(
            ticket_table.c.site == site,
            ticket_table.c.agent == "",
            ticket_table.c.device == "",
            ticket_table.c.cause == CAUSE_AGENT_SILENT,
            ticket_table.c.status == "closed",
            ticket_table.c.opened_at >= silence_started,
        )
        return conn.execute(query.limit(1)).first() is not None

    # -- unstable devices: High -------------------------------------------------------------------

    def _unstable(self, now: datetime, holds: Holds, done: Evaluation) -> None:
        query = (
            select(devices)
            .join(agents, and_(agents.c.site == devices.c.site, agents.c.agent == devices.c.agent))
            .where(devices.c.retired_at.is_(None), agents.c.online.is_(True))
        )
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
            signs = self._signs(conn, now)
            active = {
                (row.site, row.agent, row.device)
                for row in conn.execute(
                    select(ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device).where(
                        ticket_table.c.status.in_(ACTIVE_STATUSES),
                        ticket_table.c.cause.in_((CAUSE_DEVICE_DOWN, CAUSE_DEVICE_UNSTABLE)),
                    )
                )
            }
            for device in rows:
                key = (device.site, device.agent, device.device)
                reasons = self._instability(conn, device, now, signs)
                # One incident per device: an active Critical or High ticket already covers it.
                if not reasons or key in active or self._held(holds, device, now, done) is not None:
                    continue
                self._open_unstable(conn, device, reasons, now, done)

    def _open_unstable(
        self, conn: Connection, device: Row[Any], reasons: list[str], now: datetime, done: Evaluation
    ) -> None:
        priority = tickets.PRIORITY_HIGH
        model = device.model or "device"
        text = (
            f"{model} {device.device} (serial {device.serial or 'unknown serial'}) in "
            f"{device.room or 'unknown room'} at site {device.site} is unstable: "
            f"{'; '.join(reasons)}. "
            f"Reported by agent {device.agent}."
        )
        number = tickets.open_ticket(
            conn,
            site=device.site,
            agent=device.agent,
            device=device.device,
            model=device.model,
            serial=device.serial,
            contract=device.contract,
            room=device.room,
            priority=priority,
            cause=CAUSE_DEVICE_UNSTABLE,
            opened_at=now,
            response_due=self._response_due(device.site, priority, now),
            evidence={"reasons": reasons, "checks": device.checks},
            text=text,
            summary="; ".join(reasons),
        )
        done.opened.append(number)
        self._count_opened(priority)
        log.info("ticket %s opened: high, %s", number, text)

    def _signs(self, conn: Connection, now: datetime) -> Signs:
        """Every device's recent drops and reboots, and its running conditions: three queries in all."""
        rules = self.rules.unstable
        drops_query = (
            select(
                device_transitions.c.site,
                device_transitions.c.agent,
                device_transitions.c.device,
                func.count(),
            )
            .where(
                device_transitions.c.to_state == "down",
                device_transitions.c.at >= now - timedelta(seconds=rules.flap_window),
            )
            .group_by(device_transitions.c.site, device_transitions.c.agent, device_transitions.c.device)
        )
        reboots_query = (
            select(events.c.site, events.c.agent, events.c.device, func.count())
            .where(
                events.c.type == "reboot",
                events.c.device.is_not(None),
                events.c.received_at >= now - timedelta(seconds=rules.reboot_window),
                # and by the agent's clock: reboots spooled through an outage arrive together but are old
                events.c.ts >= now - timedelta(seconds=rules.reboot_window),
            )
            .group_by(events.c.site, events.c.agent, events.c.device)
        )
        return Signs(
            drops={(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(drops_query)},
            reboots={(row[0], row[1], row[2]): int(row[3]) for row in conn.execute(reboots_query)},
            conditions={
                (row.site, row.agent, row.device, row.condition): row.since
                for row in conn.execute(select(device_conditions))
            },
            closed=_last_closed(conn, CAUSE_DEVICE_UNSTABLE),
        )

    def _instability(self, conn: Connection, device: Row[Any], now: datetime, signs: Signs) -> list[str]:
        """Why ``device`` is unstable now (empty: it is not), keeping track of conditions over time."""
        rules = self.rules.unstable
        key = (device.site, device.agent, device.device)
        # Signs older than the closing of the device's last High ticket were dealt with: a condition that
        # started before it (a Tap left without audio on purpose) opens nothing until it ends and recurs.
        closed = signs.closed.get(key)
        reasons = []
        degraded = self._condition(conn, signs, key, "degraded", present=device.state == "degraded", now=now)
        if closed is not None and degraded is not None and degraded <= closed:
            degraded = None
        if degraded is not None and degraded <= now - timedelta(seconds=rules.degraded_after):
            reasons.append(
                f"degraded since {degraded.isoformat()}: {device.state_reason or 'no reason given'}"
            )
        loss = _loss_pct(device.checks)
        lossy = self._condition(
            conn, signs, key, "loss", present=loss is not None and loss >= rules.loss_pct, now=now
        )
        if closed is not None and lossy is not None and lossy <= closed:
            lossy = None
        if lossy is not None and lossy <= now - timedelta(seconds=rules.loss_after):
            reasons.append(f"packet loss {loss:g} % since {lossy.isoformat()}")
        drops = signs.drops.get(key, 0)
        if drops >= rules.flap_count and closed is not None:
            drops = _count_after(
                conn, device_transitions, key, closed, device_transitions.c.to_state == "down"
            )
        if drops >= rules.flap_count:
            reasons.append(f"flapping: down {drops} times in {rules.flap_window:g} s")
        reboots = signs.reboots.get(key, 0)
        if reboots >= rules.reboot_count and closed is not None:
            reboots = _count_after(conn, events, key, closed, events.c.type == "reboot")
        if reboots >= rules.reboot_count:
            reasons.append(f"rebooted {reboots} times in {rules.reboot_window:g} s")
        return reasons

    def _condition(
        self,
        conn: Connection,
        signs: Signs,
        key: tuple[str, str, str],
        name: str,
        *,
        present: bool,
        now: datetime,
    ) -> datetime | None:
        """Since when a condition has held without a break (None: it does not hold now)."""
        since = signs.conditions.get((*key, name))
        if not present:
            if since is not None:
                conn.execute(
                    delete(device_conditions).where(
                        device_conditions.c.site == key[0],
                        device_conditions.c.agent == key[1],
                        device_conditions.c.device == key[2],
                        device_conditions.c.condition == name,
                    )
                )
            return None
        if since is None:
            conn.execute(
                insert(device_conditions).values(
                    site=key[0], agent=key[1], device=key[2], condition=name, since=now
                )
            )
            return now
        return since

    def _note_events(self, conn: Connection, now: datetime) -> None:
        """Add each new ``reboot`` and ``firmware-changed`` event of a device to its active tickets' timelines
        (evidence for the verification). Events stored before this engine started are not noted."""
        if self._event_cursor is None:
            self._event_cursor = int(conn.execute(select(func.max(events.c.id))).scalar() or 0)
            return
        rows = conn.execute(
            select(events.c.id, events.c.site, events.c.agent, events.c.device, events.c.type, events.c.body)
            .where(events.c.id > self._event_cursor)
            .order_by(events.c.id)
        ).all()
        for row in rows:
            self._event_cursor = max(self._event_cursor, row.id)
            if row.type not in NOTED_EVENTS or row.device is None:
                continue
            body = row.body if isinstance(row.body, dict) else {}
            detail = body.get("reason")
            text = f"Event {row.type} of device {row.device}" + (
                f": {detail}" if isinstance(detail, str) else "."
            )
            query = select(ticket_table.c.id).where(
                ticket_table.c.site == row.site,
                ticket_table.c.agent == row.agent,
                ticket_table.c.device == row.device,
                ticket_table.c.status.in_(ACTIVE_STATUSES),
            )
            for ticket_id in conn.execute(query).scalars():
                tickets.add_entry(conn, ticket_id, now, row.type, text)

    def _prune(self, conn: Connection, now: datetime) -> None:
        """Forget device transitions too old for the flapping rule (at most once an hour)."""
        if self._pruned_at is not None and now - self._pruned_at < timedelta(hours=1):
            return
        self._pruned_at = now
        keep = timedelta(seconds=self.rules.unstable.flap_window) * 2
        conn.execute(delete(device_transitions).where(device_transitions.c.at < now - keep))

    # -- SLA: warnings and breaches ---------------------------------------------------------------

    def _sla(self, conn: Connection, now: datetime, done: Evaluation) -> None:
        rows = conn.execute(select(ticket_table).where(ticket_table.c.status.in_(ACTIVE_STATUSES))).all()
        known = tickets.known_breaches(conn)
        for row in rows:
            state, recorded = tickets.refresh(conn, row, self.context, now, known)
            for deadline, due in recorded.items():
                done.breached.append((row.number, deadline))
                text = f"SLA breached: the {deadline} deadline was {due.isoformat()}."
                tickets.add_entry(conn, row.id, now, "sla-breach", text, sla_state=state)
                log.warning("ticket %s: %s", row.number, text)
            if state == "warning" and row.sla_state != "warning":
                done.warned.append(row.number)
                text = "SLA warning: a deadline is less than the warning time away."
                tickets.add_entry(conn, row.id, now, "sla-warning", text, sla_state=state)
                log.info("ticket %s: %s", row.number, text)
        if self._metrics is not None:
            self._metrics.publish_sla(conn)

    def _count_opened(self, priority: str) -> None:
        if self._metrics is not None:
            self._metrics.tickets_opened.labels(priority=priority).inc()


def _count_after(conn: Connection, table: Any, key: tuple[str, str, str], after: datetime, kind: Any) -> int:
    """How many rows of ``table`` (transitions, or events) of this device of ``kind`` came after ``after``."""
    moment = table.c.at if table is device_transitions else table.c.received_at
    query = select(func.count()).where(
        table.c.site == key[0], table.c.agent == key[1], table.c.device == key[2], kind, moment > after
    )
    return int(conn.execute(query).scalar_one())


def _last_closed(conn: Connection, cause: str) -> dict[tuple[str, str, str], datetime]:
    """When each device's last ticket of ``cause`` was closed: signs from before it do not count again."""
    columns = (ticket_table.c.site, ticket_table.c.agent, ticket_table.c.device)
    query = (
        select(*columns, func.max(ticket_table.c.closed_at))
        .where(
            ticket_table.c.cause == cause,
            ticket_table.c.status == "closed",
            ticket_table.c.closed_at.is_not(None),
        )
        .group_by(*columns)
    )
    return {(row[0], row[1], row[2]): row[3] for row in conn.execute(query)}


def _loss_pct(checks: Any) -> float | None:
    """The worst ``metrics.loss_pct`` among a device's check results, if any reports one."""
    worst = None
    for check in checks if isinstance(checks, list) else []:
        metrics = check.get("metrics") if isinstance(check, dict) else None
        value = metrics.get("loss_pct") if isinstance(metrics, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            worst = float(value) if worst is None else max(worst, float(value))
    return worst


def _tickets_with_devices(*conditions: Any) -> Any:
    """Tickets (id, number) with their device's key, where ``conditions`` hold for ticket and device."""
    columns = (ticket_table.c.id, ticket_table.c.number, devices.c.site, devices.c.agent, devices.c.device)
    return select(*columns).join(devices, _same_device()).where(*conditions)


def _same_device() -> Any:
    return and_(
        devices.c.site == ticket_table.c.site,
        devices.c.agent == ticket_table.c.agent,
        devices.c.device == ticket_table.c.device,
    )


def _opened_text(device: Row[Any], down_since: datetime) -> str:
    model = device.model or "device"
    serial = device.serial or "unknown serial"
    room = device.room or "unknown room"
    reason = device.state_reason or "no reason given"
    return (
        f"{model} {device.device} (serial {serial}) in {room} at site {device.site} "
        f"is down since {down_since.isoformat()}: {reason}. Reported by agent {device.agent}."
    )
