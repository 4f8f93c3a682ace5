"""What a customer's user may see: the devices under that customer's contracts, and their sites.

A device belongs to the customer whose contract covers it, found as coverage finds it
(``registry.contracts``): the contract number its agent sends, else the registry entry listing its serial.
Site-wide things (agents, site incidents, maintenance windows) belong to the sites of those devices;
device things (devices, their tickets) to the devices themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, or_, select, true

from collector.registry.contracts import Registry
from collector.store.schema import devices


@dataclass(frozen=True)
class Scope:
    """One customer's contracts, devices (site, agent, device) and sites; ``where``: its devices as a
    condition on the ``devices`` table, for a query that counts or picks them in the store."""

    customer: str
    contracts: frozenset[str]
    devices: frozenset[tuple[str, str, str]]
    sites: frozenset[str]
    where: ColumnElement[bool] = field(default_factory=true, compare=False, repr=False)

    def has_site(self, site: str) -> bool:
        return site in self.sites

    def has_device(self, site: str, agent: str, device: str) -> bool:
        return (site, agent, device) in self.devices

    def has_agent(self, site: str, agent: str) -> bool:
        return any(s == site and a == agent for s, a, _ in self.devices)

    def has_ticket(self, ticket: Mapping[str, Any]) -> bool:
        """A device's ticket by its device or contract; a site's (no device) by its site."""
        if ticket["device"]:
            return (
                self.has_device(ticket["site"], ticket["agent"], ticket["device"])
                or ticket["contract"] in self.contracts
            )
        return self.has_site(ticket["site"])

    def has_window(self, window: Mapping[str, Any]) -> bool:
        """A maintenance window at one of the customer's sites (of one of its devices, if it names one)."""
        if window["device"]:
            return self.has_device(window["site"], window["agent"], window["device"])
        return self.has_site(window["site"])


def scope_of(conn: Connection, customer: str) -> Scope:
    """The scope of ``customer`` as the store holds it now (retired devices too: their tickets stay).

    The store picks the devices (by contract number, else by a serial a contract lists), so a customer with a
    few rooms in a fleet of 100,000 devices costs a scan in the database, not 100,000 rows read here."""
    registry = Registry.load(conn)
    numbers = frozenset(n for n, c in registry.by_number.items() if c.customer == customer)
    serials = [serial for serial, c in registry.by_serial.items() if c.number in numbers]
    by_contract = devices.c.contract.in_(sorted(numbers))
    unregistered = or_(devices.c.contract.is_(None), devices.c.contract.not_in(sorted(registry.by_number)))
    by_serial = and_(unregistered, devices.c.serial.in_(serials)) if serials else false()
    where = or_(by_contract, by_serial)
    found = {
        (row.site, row.agent, row.device)
        for row in conn.execute(select(devices.c.site, devices.c.agent, devices.c.device).where(where))
    }
    return Scope(customer, numbers, frozenset(found), frozenset(site for site, _, _ in found), where)
