"""SNMPv2c notifications as a switch sends them: linkDown/linkUp and PoE port on/off, hand-encoded (BER).

The simulated PoE switch sends one when a port's link or PoE state changes, to the trap receivers it was
given, as a real switch configured with ``snmp-server host`` does. No SNMP library: a v2c trap is a few
dozen bytes.
"""

import itertools
import socket
from collections.abc import Sequence

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
PETH_ON_OFF = "1.3.6.1.2.1.105.0.1"
IF_INDEX, IF_ADMIN, IF_OPER = "1.3.6.1.2.1.2.2.1.1", "1.3.6.1.2.1.2.2.1.7", "1.3.6.1.2.1.2.2.1.8"
PETH_DETECTION_STATUS = "1.3.6.1.2.1.105.1.1.1.6"

_request_ids = itertools.count(1)
Value = tuple[str, int | str]  # ("integer" | "timeticks" | "oid", value)


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _integer(tag: int, number: int) -> bytes:
    """A non-negative INTEGER (or TimeTicks): big-endian, with a leading zero byte when the top bit is set."""
    return _tlv(tag, number.to_bytes(max(1, (number.bit_length() + 8) // 8), "big"))


def _oid(dotted: str) -> bytes:
    arcs = [int(part) for part in dotted.strip(".").split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk, rest = [arc & 0x7F], arc >> 7
        while rest:
            chunk.append(0x80 | (rest & 0x7F))
            rest >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _value(value: Value) -> bytes:
    kind, data = value
    if kind == "oid":
        return _oid(str(data))
    if kind == "timeticks":
        return _integer(0x43, int(data) % 2**32)
    return _integer(0x02, int(data))


def v2c_trap(
    community: str, uptime_ticks: int, trap_oid: str, var_binds: Sequence[tuple[str, Value]]
) -> bytes:
    """An SNMPv2-Trap-PDU message: sysUpTime.0, snmpTrapOID.0, then ``var_binds``."""
    binds: list[tuple[str, Value]] = [
        (SYS_UPTIME, ("timeticks", uptime_ticks)),
        (SNMP_TRAP_OID, ("oid", trap_oid)),
        *var_binds,
    ]
    encoded = b"".join(_tlv(0x30, _oid(oid) + _value(value)) for oid, value in binds)
    pdu = _tlv(
        0xA7, _integer(0x02, next(_request_ids)) + _integer(0x02, 0) + _integer(0x02, 0) + _tlv(0x30, encoded)
    )
    return _tlv(0x30, _integer(0x02, 1) + _tlv(0x04, community.encode()) + pdu)


def link_trap(community: str, uptime_ticks: int, if_index: int, admin: int, oper: int) -> bytes:
    """linkDown (oper not up) or linkUp, with the port's ifIndex, ifAdminStatus and ifOperStatus."""
    return v2c_trap(
        community,
        uptime_ticks,
        LINK_UP if oper == 1 else LINK_DOWN,
        [
            (f"{IF_INDEX}.{if_index}", ("integer", if_index)),
            (f"{IF_ADMIN}.{if_index}", ("integer", admin)),
            (f"{IF_OPER}.{if_index}", ("integer", oper)),
        ],
    )


def poe_trap(community: str, uptime_ticks: int, group: int, port: int, detection: int) -> bytes:
    """POWER-ETHERNET-MIB pethPsePortOnOffNotification, with the port's pethPsePortDetectionStatus."""
    return v2c_trap(
        community,
        uptime_ticks,
        PETH_ON_OFF,
        [(f"{PETH_DETECTION_STATUS}.{group}.{port}", ("integer", detection))],
    )


def send(message: bytes, targets: Sequence[tuple[str, int]]) -> None:
    """Send ``message`` to every (host, port); a target that is not listening is no error (UDP)."""
    for host, port in targets:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(message, (host, port))
            except OSError:
                continue
