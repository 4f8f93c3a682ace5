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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Row, and_, or_, select
from sqlalchemy.exc import IntegrityError

from collector import tickets
from collector.metrics import Metrics
from collector.store import CAUSE_DEVICE_DOWN, OPEN_STATUSES, agents, devices, utcnow
from collector.store import tickets as ticket_table

log = logging.getLogger(__name__)

#: The ``closed`` entry of a ticket whose device was retired.
RETIRED_TEXT = "Device removed from the agent's inventory."


@dataclass
class Evaluation:
    """What one evaluation did, by ticket number."""

    opened: list[str] = field(default_factory=list)
    reopened: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


class IncidentEngine:
    """Evaluates the ticket rule over the store; ``now`` is injectable so tests control time."""

    def __init__(
        self,
        engine: Engine,
        *,
        confirm_window: float,
        critical_response_hours: float,
        reopen_window: float = 86400.0,
        metrics: Metrics | None = None,
        now: Callable[[], datetime] = utcnow,
        on_ticket_opened: Callable[[str], None] | None = None,
    ) -> None:
        self._engine = engine
        self._on_ticket_opened = on_ticket_opened
        self._confirm = timedelta(seconds=confirm_window)
        self._response = timedelta(hours=critical_response_hours)
        self._reopen = timedelta(seconds=reopen_window)
        self._metrics = metrics
        self._now = now
        self.last = Evaluation()

    def evaluate(self) -> list[str]:
        """Take every ticket decision due now; return the numbers of the tickets opened (``last`` has all)."""
        now = self._now()
        done = Evaluation()
        with self._engine.begin() as conn:
            self._close_retired(conn, now, done)
            self._recover(conn, now, done)
            self._close(conn, now, done)
            candidates = conn.execute(self._candidates(now)).all()
        for device in candidates:
            self._confirmed_down(device, now, done)
        self.last = done
        return done.opened

    # -- the decisions ----------------------------------------------------------------------------

    def _close_retired(self, conn: Connection, now: datetime, done: Evaluation) -> None:
        query = _tickets_with_devices(
            ticket_table.c.status.in_(OPEN_STATUSES),
            devices.c.retired_at.is_not(None),
        )
        for row in conn.execute(query).all():
            tickets.close(conn, row.id)
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
            ticket_table.c.status == "open",
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
            tickets.close(conn, row.id)
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
                        tickets.set_status(conn, ticket.id, "open", recovered_at=None)
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
                    response_due=now + self._response,
                    evidence=still.checks,
                    text=_opened_text(still, down_since),
                )
        except IntegrityError:
            return  # another writer opened it first; the unique index kept it to one
        done.opened.append(number)
        if self._metrics is not None:
            self._metrics.tickets_opened.labels(priority=tickets.PRIORITY_CRITICAL).inc()
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
