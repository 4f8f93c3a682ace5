"""What the trap receiver makes of a notification: which kind, from which switch, about which port."""

from agent.drivers.snmp.traps import decode


def oid(dotted: str) -> tuple[int, ...]:
    return tuple(int(part) for part in dotted.split("."))


TRAP_OID = oid("1.3.6.1.6.3.1.1.4.1.0")
UPTIME = (oid("1.3.6.1.2.1.1.3.0"), 12345)


def test_a_linkdown_names_its_port_by_ifindex() -> None:
    trap = decode(
        "192.0.2.2",
        [UPTIME, (TRAP_OID, oid("1.3.6.1.6.3.1.1.5.3")), (oid("1.3.6.1.2.1.2.2.1.1.10110"), 10110)],
    )
    assert trap is not None
    assert (trap.kind, trap.source, trap.if_index, trap.poe) == ("linkDown", "192.0.2.2", 10110, None)


def test_a_poe_notification_names_its_poe_port() -> None:
    binds = [UPTIME, (TRAP_OID, oid("1.3.6.1.2.1.105.0.1")), (oid("1.3.6.1.2.1.105.1.1.1.6.1.10"), 2)]
    trap = decode("192.0.2.2", binds)
    assert trap is not None
    assert (trap.kind, trap.poe) == ("pethPsePortOnOffNotification", (1, 10))


def test_a_relayed_trap_counts_as_coming_from_the_switch_it_names() -> None:
    binds = [
        UPTIME,
        (TRAP_OID, oid("1.3.6.1.6.3.1.1.5.1")),
        (oid("1.3.6.1.6.3.18.1.3.0"), bytes([192, 0, 2, 7])),
    ]
    trap = decode("198.51.100.1", binds)
    assert trap is not None
    assert (trap.kind, trap.source) == ("coldStart", "192.0.2.7")


def test_a_notification_not_about_ports_is_not_ours() -> None:
    assert decode("192.0.2.2", [UPTIME, (TRAP_OID, oid("1.3.6.1.4.1.9.9.43.2.0.1"))]) is None
