"""Finding the switch port of a check: its ifIndex from a name, and the PoE port under it.

**A port by name.** ``if_name`` is matched, in this order, against ifName exactly, then ifName, ifDescr and
ifAlias ignoring case (and the quotes and spaces some switches keep around an alias): ``Gi1/0/1``,
``gi1/0/1`` and ``GigabitEthernet1/0/1`` all find Cisco's port 1. A name matching several ports, or none, is
an error that says so and lists the nearest names the switch has.

**The PoE port.** POWER-ETHERNET-MIB indexes its ports by (group, port), not by ifIndex, and RFC 3621 leaves
the mapping to the vendor: Cisco numbers them (stack member, port number): ``Gi1/0/10`` is 1.10 while its
ifIndex is 10110; HPE, D-Link and others number them like their ifIndex. So the PoE port is found from the
switch's own rows, walked once: the configured ``poe_group``/``poe_port`` if given; else the (first number,
last number) of the port's ifName or ifDescr, or (group, last number); else (group, ifIndex). A switch with
no POWER-ETHERNET-MIB rows (many do not implement it), or no row for the port, has its PoE "not readable":
the check is then judged on the link, and says why, never ``down`` for it.
"""

import difflib
import re
from dataclasses import dataclass

from agent.drivers.snmp.options import SnmpOptions
from agent.drivers.snmp.session import Session, SnmpReadError, Value

IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.18"
PETH_DETECTION_STATUS = "1.3.6.1.2.1.105.1.1.1.6"
NAME_COLUMNS = (("ifName", IF_NAME), ("ifDescr", IF_DESCR), ("ifAlias", IF_ALIAS))


def text(value: Value) -> str:
    """A DisplayString as text, control characters and surrounding space removed."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(value or "")).strip()


def _key(name: str) -> str:
    return name.strip().strip('"').strip().casefold()


@dataclass(frozen=True)
class FoundPort:
    if_index: int
    how: str  # "ifName", "ifDescr", "ifAlias"


async def find_interface(session: Session, wanted: str) -> FoundPort:
    """The port ``wanted`` names; ``SnmpReadError`` saying why when there is not exactly one."""
    names: dict[str, dict[int, str]] = {}
    for label, column in NAME_COLUMNS:
        names[label] = {
            index[0]: text(value) for index, value in await session.walk(column) if len(index) == 1
        }
    exact = [index for index, name in names["ifName"].items() if name == wanted]
    if len(exact) == 1:
        return FoundPort(exact[0], "ifName")
    key = _key(wanted)
    for label, _column in NAME_COLUMNS:
        found = sorted({index for index, name in names[label].items() if name and _key(name) == key})
        if len(found) == 1:
            return FoundPort(found[0], label)
        if len(found) > 1:
            listed = ", ".join(str(index) for index in found[:8])
            raise SnmpReadError(
                f"{wanted!r} is the {label} of several ports (ifIndex {listed}): give if_index"
            )
    shown = {_key(name): name for column in names.values() for name in column.values() if name}
    near = [shown[k] for k in difflib.get_close_matches(key, list(shown), n=5, cutoff=0.6)]
    hint = f"; nearest: {', '.join(near)}" if near else ""
    if not shown:
        hint = "; the switch lists no interface names"
    raise SnmpReadError(
        f"no interface named {wanted!r} on the switch (ifName, ifDescr, ifAlias, any case){hint}"
    )


@dataclass(frozen=True)
class PoePort:
    group: int
    port: int
    how: str

    @property
    def index(self) -> str:
        return f"{self.group}.{self.port}"


def _ranges(rows: set[tuple[int, int]]) -> str:
    groups: dict[int, list[int]] = {}
    for group, port in sorted(rows):
        groups.setdefault(group, []).append(port)
    return ", ".join(f"{g}.{min(ports)}-{g}.{max(ports)}" for g, ports in groups.items())


async def find_poe_port(session: Session, options: SnmpOptions, if_index: int) -> PoePort | str:
    """The PoE port of ``if_index``, or why the PoE of this port cannot be read."""
    rows = {
        (index[0], index[1]) for index, _value in await session.walk(PETH_DETECTION_STATUS) if len(index) == 2
    }
    if not rows:
        return "no POWER-ETHERNET-MIB port rows"
    if options.poe_port is not None:
        wanted = (1 if options.poe_group is None else options.poe_group, options.poe_port)
        if wanted in rows:
            return PoePort(*wanted, "configured")
        return f"no PoE port {wanted[0]}.{wanted[1]} (configured; the switch has {_ranges(rows)})"
    groups = [options.poe_group] if options.poe_group is not None else sorted({g for g, _p in rows})
    candidates: list[tuple[tuple[int, int], str]] = []
    ifname, ifdescr = await session.get([f"{IF_NAME}.{if_index}", f"{IF_DESCR}.{if_index}"])
    for name in (text(ifname), text(ifdescr)):
        numbers = [int(n) for n in re.findall(r"\d+", name)]
        if not numbers:
            continue
        if len(numbers) >= 2:
            candidates.append(((numbers[0], numbers[-1]), f"from the port name {name}"))
        candidates.extend(((group, numbers[-1]), f"from the port name {name}") for group in groups)
    candidates.extend(((group, if_index), "the port's ifIndex") for group in groups)
    for key, how in candidates:
        if key in rows and (options.poe_group is None or key[0] == options.poe_group):
            return PoePort(*key, how)
    return f"no PoE port for ifIndex {if_index} among {_ranges(rows)} (set poe_group and poe_port)"
