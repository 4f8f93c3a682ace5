"""Contract coverage: which HEZO+ contract covers a device, and whether it is in force.

The registry lives on the collector (``contracts`` table, filled from the configuration file and the
CLI/API): number, start date, term in years (1 to 5), optionally the serial numbers it covers. A device's
contract number is the one its agent sends in the birth inventory, or else the registry entry listing the
device's serial. Coverage states:

- ``active``: in force; ``expiring``: in force, ending within ``contract_warning_days``;
- ``expired`` / ``not-started``: outside its term: no automatic ticket, a warning;
- ``missing``: no contract number at all: no automatic ticket, a warning;
- ``unregistered``: a number the registry does not know: a warning; tickets open or not per
  ``incidents.unregistered_contract`` (``open`` by default: the agent's word is taken).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from collector import audit
from collector.errors import InvalidError, NotFoundError
from collector.store.database import utcnow
from collector.store.schema import contracts

ACTIVE = "active"
EXPIRING = "expiring"
EXPIRED = "expired"
NOT_STARTED = "not-started"
MISSING = "missing"
UNREGISTERED = "unregistered"

#: States in which a ticket may open automatically (``unregistered`` depends on the configuration).
COVERED = frozenset({ACTIVE, EXPIRING})


@dataclass(frozen=True)
class Contract:
    number: str
    start: date
    years: int
    customer: str | None
    serials: tuple[str, ...]
    contact: str | None = None

    @property
    def ends(self) -> date:
        """The first day no longer covered: the start date ``years`` later (Feb 29 -> Feb 28)."""
        try:
            return self.start.replace(year=self.start.year + self.years)
        except ValueError:
            return self.start.replace(year=self.start.year + self.years, day=28)


@dataclass(frozen=True)
class Coverage:
    state: str
    number: str | None
    ends: date | None = None

    @property
    def warning(self) -> str | None:
        """What a person should know, or None when all is well."""
        if self.state == ACTIVE:
            return None
        if self.state == EXPIRING:
            return f"contract {self.number} ends on {self.ends}"
        if self.state == EXPIRED:
            return f"contract {self.number} expired on {self.ends}: no automatic ticket"
        if self.state == NOT_STARTED:
            return f"contract {self.number} has not started yet: no automatic ticket"
        if self.state == MISSING:
            return "no service contract number: no automatic ticket"
        return f"contract {self.number} is not in the collector's registry"


class Registry:
    """The contracts by number, and by serial for those that list serials."""

    def __init__(self, items: Iterable[Contract]) -> None:
        self.by_number = {item.number: item for item in items}
        self.by_serial = {serial: item for item in self.by_number.values() for serial in item.serials}

    @classmethod
    def load(cls, conn: Connection) -> Registry:
        return cls(
            Contract(row.number, row.start, row.years, row.customer, tuple(row.serials or ()), row.contact)
            for row in conn.execute(select(contracts))
        )

    def coverage(self, number: str | None, serial: str | None, today: date, warning_days: int) -> Coverage:
        """How the device with contract ``number`` (from its agent) and ``serial`` is covered on ``today``."""
        contract = self.by_number.get(number) if number else None
        if contract is None and serial:
            contract = self.by_serial.get(serial)
        if contract is None:
            return Coverage(UNREGISTERED if number else MISSING, number)
        if today < contract.start:
            return Coverage(NOT_STARTED, contract.number, contract.ends)
        if today >= contract.ends:
            return Coverage(EXPIRED, contract.number, contract.ends)
        if today >= contract.ends - timedelta(days=warning_days):
            return Coverage(EXPIRING, contract.number, contract.ends)
        return Coverage(ACTIVE, contract.number, contract.ends)


def values(
    *,
    number: str,
    start: date,
    years: int,
    customer: str | None = None,
    serials: list[str] | None = None,
    contact: str | None = None,
) -> dict[str, Any]:
    """A row for the ``contracts`` table, checked (``InvalidError`` with the reason)."""
    if not number:
        raise InvalidError("a contract needs a number")
    if not 1 <= years <= 5:
        raise InvalidError(f"a HEZO+ term is 1 to 5 years, not {years}")
    if contact is not None and not _ADDRESS.fullmatch(contact):
        raise InvalidError(f"contact {contact!r}: expected one e-mail address like it@customer.example")
    return {
        "number": number,
        "start": start,
        "years": years,
        "customer": customer,
        "serials": serials or [],
        "contact": contact,
    }


#: One mailbox: no display name, no list, nothing a mail header could be split at.
_ADDRESS = re.compile(r"[^@\s<>,;\"']{1,64}@[A-Za-z0-9.-]{1,190}")


def put(
    conn: Connection,
    row: dict[str, Any],
    source: str = "api",
    *,
    by: str | None = None,
    now: datetime | None = None,
) -> None:
    """Add or replace a contract by number; audited as ``by``'s when given (people's changes, not the
    configuration file's)."""
    replaced = conn.execute(delete(contracts).where(contracts.c.number == row["number"])).rowcount
    conn.execute(insert(contracts).values(source=source, **row))
    if by is not None:
        shown = f"start {row['start']}, {row['years']} years, customer {row.get('customer') or '-'}"
        event = "contract-replace" if replaced else "contract-add"
        audit.record(conn, now or utcnow(), event, shown, actor=by, subject=row["number"])


def remove(conn: Connection, number: str, *, by: str | None = None, now: datetime | None = None) -> None:
    """Remove the contract numbered ``number``; ``NotFoundError`` if there is none."""
    if not conn.execute(delete(contracts).where(contracts.c.number == number)).rowcount:
        raise NotFoundError(f"no contract numbered {number!r}")
    if by is not None:
        audit.record(conn, now or utcnow(), "contract-remove", number, actor=by, subject=number)


def replace_configured(conn: Connection, rows: Iterable[dict[str, Any]]) -> None:
    """Make the ``config`` contracts exactly ``rows``; a number also entered through the API keeps that."""
    conn.execute(delete(contracts).where(contracts.c.source == "config"))
    taken = set(conn.execute(select(contracts.c.number)).scalars())
    for row in rows:
        if row["number"] not in taken:
            put(conn, row, source="config")


def list_contracts(conn: Connection, today: date, warning_days: int) -> list[dict[str, Any]]:
    """Every registered contract with its end date and state on ``today``."""
    registry = Registry.load(conn)
    result = []
    for number in sorted(registry.by_number):
        item = registry.by_number[number]
        state = registry.coverage(number, None, today, warning_days)
        result.append(
            {
                "number": number,
                "start": item.start.isoformat(),
                "years": item.years,
                "ends": item.ends.isoformat(),
                "customer": item.customer,
                "contact": item.contact,
                "serials": list(item.serials),
                "state": state.state,
            }
        )
    return result


def device_coverage(
    conn: Connection, today_of: Callable[[str], date], warning_days: int
) -> list[dict[str, Any]]:
    """Every watched device with its coverage; ``today_of(site)`` is today's date on that site's clock."""
    from collector.store.schema import devices

    registry = Registry.load(conn)
    rows = conn.execute(
        select(devices.c.site, devices.c.agent, devices.c.device, devices.c.serial, devices.c.contract)
        .where(devices.c.retired_at.is_(None))
        .order_by(devices.c.site, devices.c.agent, devices.c.device)
    )
    result = []
    for row in rows:
        cover = registry.coverage(row.contract, row.serial, today_of(row.site), warning_days)
        result.append(
            {
                "site": row.site,
                "agent": row.agent,
                "device": row.device,
                "serial": row.serial,
                "contract": cover.number,
                "state": cover.state,
                "ends": cover.ends.isoformat() if cover.ends else None,
                "warning": cover.warning,
            }
        )
    return result
