"""A customer's scope: its devices by the contract number their agent sends, else by a serial one of its
contracts lists; a number registered to another customer wins over a listed serial."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from collector.people.scope import scope_of
from collector.registry import contracts
from collector.store.schema import devices
from tests.support.collector import T0


def test_devices_are_the_customers_by_contract_number_else_by_listed_serial(engine: Engine) -> None:
    fleet = [
        ("hq", "pc-1", "bar", "C-ACME", "S-1"),  # Acme's by its number
        ("hq", "pc-1", "tap", None, "S-2"),  # no number: Acme lists its serial
        ("branch", "pc-2", "cam", "X-UNKNOWN", "S-3"),  # a number nobody registered: the serial decides
        ("plant", "pc-9", "bar", "C-GLOBEX", "S-4"),  # Globex's number, though Acme lists the serial too
        ("plant", "pc-9", "tap", None, "S-5"),  # nobody's
        ("depot", "pc-7", "hub", "", "S-9"),  # an empty number is no number; the serial is nobody's
    ]
    with engine.begin() as conn:
        acme = contracts.values(
            number="C-ACME", start=T0.date(), years=3, customer="Acme", serials=["S-2", "S-3", "S-4"]
        )
        contracts.put(conn, acme)
        contracts.put(conn, contracts.values(number="C-GLOBEX", start=T0.date(), years=3, customer="Globex"))
        for site, agent, device, contract, serial in fleet:
            row = {"site": site, "agent": agent, "device": device, "contract": contract, "serial": serial}
            conn.execute(insert(devices).values(**row))
    with engine.connect() as conn:
        seen = scope_of(conn, "Acme")
        globex = scope_of(conn, "Globex")
        nobody = scope_of(conn, "Initech")
    assert seen.devices == {("hq", "pc-1", "bar"), ("hq", "pc-1", "tap"), ("branch", "pc-2", "cam")}
    assert seen.sites == {"hq", "branch"}
    assert seen.contracts == {"C-ACME"}
    assert globex.devices == {("plant", "pc-9", "bar")}
    assert nobody.devices == frozenset()
