"""The agent's SNMP notification receiver: a switch says a port went down the instant it happens.

One receiver per agent (``snmp.traps`` in the agent's config), shared by every snmp check through the
agent's ``SharedResources``. It listens on one UDP port (162 by default), accepts SNMPv2c traps and informs
with the communities of the snmp checks (and any listed), and SNMPv3 ones from the checks' users (and any
listed): a v3 trap is authenticated with the keys localised to the *sending* switch's engine id, which each
check reads from its switch (``snmpEngineID``) and hands over here, so a user name shared by many switches
with different keys still works. A v3 inform is authenticated with this agent's own engine id: there one
key per user name (the first configured) is possible, as the protocol has it.

Understood: ``linkDown``/``linkUp`` (IF-MIB, with the port's ifIndex), POWER-ETHERNET-MIB
``pethPsePortOnOffNotification`` (with the PoE port), ``coldStart``/``warmStart``. Each is handed to the
checks of the switch it came from (its UDP source, or ``snmpTrapAddress`` when a relay forwarded it); a
check whose port it concerns wakes its device's poll at once (``SnmpProbe.watch``). The trap itself never
decides a state: the check reads the port, and the trap only confirms what it reads.
"""

import asyncio
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.drivers.context import ResourceKey
from agent.drivers.snmp import ciphers
from agent.drivers.snmp.options import SnmpOptions, TrapsConfig, UsmKeys
from agent.drivers.snmp.session import usm_arguments

if TYPE_CHECKING:
    from pysnmp.entity.engine import SnmpEngine

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
SNMP_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
KINDS = {
    "1.3.6.1.6.3.1.1.5.1": "coldStart",
    "1.3.6.1.6.3.1.1.5.2": "warmStart",
    "1.3.6.1.6.3.1.1.5.3": "linkDown",
    "1.3.6.1.6.3.1.1.5.4": "linkUp",
    "1.3.6.1.2.1.105.0.1": "pethPsePortOnOffNotification",
}
IF_ENTRY = (1, 3, 6, 1, 2, 1, 2, 2, 1)
PETH_PORT_ENTRY = (1, 3, 6, 1, 2, 1, 105, 1, 1, 1)


@dataclass(frozen=True)
class Trap:
    """One notification understood: what, from which switch, about which port."""

    kind: str
    source: str
    if_index: int | None = None
    poe: tuple[int, int] | None = None


def decode(source: str, var_binds: list[tuple[tuple[int, ...], Any]]) -> Trap | None:
    """The trap in ``var_binds`` (OIDs as tuples, values as pysnmp or plain values), or None if not ours."""
    kind = None
    if_index = poe = None
    for oid, value in var_binds:
        dotted = ".".join(map(str, oid))
        if dotted == SNMP_TRAP_OID:
            kind = KINDS.get(".".join(str(part) for part in tuple(value)))
        elif dotted == SNMP_TRAP_ADDRESS:
            raw = bytes(value) if not isinstance(value, str) else value.encode()
            if len(raw) == 4:
                source = socket.inet_ntoa(raw)
        elif oid[: len(IF_ENTRY)] == IF_ENTRY and len(oid) == len(IF_ENTRY) + 2:
            if_index = oid[-1]
        elif oid[: len(PETH_PORT_ENTRY)] == PETH_PORT_ENTRY and len(oid) == len(PETH_PORT_ENTRY) + 3:
            poe = (oid[-2], oid[-1])
    if kind is None:
        return None
    return Trap(kind, source, if_index, poe)


Listener = Callable[[Trap], None]


class TrapReceiver:
    """Listens once started (by the first check that waits for traps); ``close()`` stops it."""

    def __init__(self, config: TrapsConfig) -> None:
        self.config = config
        self.hold = config.hold
        self.received = 0
        self.understood = 0
        self._listeners: dict[str, list[Listener]] = {}
        self._communities: list[str] = [c.get_secret_value() for c in config.communities]
        self._users: list[tuple[UsmKeys, bytes | None]] = [
            (user, bytes.fromhex(user.engine_id) if user.engine_id else None) for user in config.users
        ]
        self._applied_communities: set[str] = set()
        self._applied_users: set[tuple[Any, ...]] = set()
        self._engine: SnmpEngine | None = None
        self._sock: socket.socket | None = None
        self._failed: str | None = None
        self._starting = asyncio.Lock()

    def accept(self, options: SnmpOptions) -> None:
        """Accept notifications sent with a check's own credentials (v3: once its engine id is known)."""
        if options.version == "2c":
            assert options.community is not None
            self._communities.append(options.community.get_secret_value())
        else:
            self._users.append((options, None))
        self._apply()

    def sender_engine(self, options: SnmpOptions, engine_id: bytes) -> None:
        """A v3 check read its switch's engine id: its traps, sent as the check's user, are accepted."""
        if options.version == "3":
            self._users.append((options, engine_id))
            self._apply()

    def _apply(self) -> None:
        if self._engine is None:
            return
        from pysnmp.entity import config
        from pysnmp.proto.rfc1902 import OctetString

        for community in self._communities:
            if community not in self._applied_communities:
                index = f"hezo-trap-{len(self._applied_communities)}"
                config.add_v1_system(self._engine, index, community)
                self._applied_communities.add(community)
        local_names = {key[0] for key in self._applied_users if key[1] is None}
        for keys, engine_id in self._users:
            identity = (keys.user, engine_id, *keys.security_key())
            taken = engine_id is None and keys.user in local_names  # informs: one key per user name
            if identity in self._applied_users or taken:
                continue
            arguments = usm_arguments(keys)
            if engine_id is not None:
                arguments["securityEngineId"] = OctetString(engine_id)
            config.add_v3_user(self._engine, keys.user, **arguments)
            self._applied_users.add(identity)
            if engine_id is None:
                local_names.add(keys.user)

    async def start(self) -> bool:
        """Listen (once); False, with the reason logged once, when the port cannot be had."""
        async with self._starting:
            if self._engine is not None:
                return True
            if self._failed is not None:
                return False
            ciphers.install()
            from pysnmp.carrier.asyncio.dgram import udp, udp6
            from pysnmp.entity import config
            from pysnmp.entity.engine import SnmpEngine
            from pysnmp.entity.rfc3413 import ntfrcv

            six = ":" in self.config.listen
            sock = socket.socket(socket.AF_INET6 if six else socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.config.listen, self.config.port))
            except OSError as exc:
                sock.close()
                self._failed = exc.strerror or str(exc)
                hint = (
                    " (port 162 needs CAP_NET_BIND_SERVICE: see docs/snmp.md)"
                    if self.config.port < 1024
                    else ""
                )
                log.error(  # noqa: TRY400  (the reason is in the message; a traceback would only add noise)
                    "SNMP traps: cannot listen on udp %s:%d: %s%s; the switches' ports are polled only",
                    self.config.listen,
                    self.config.port,
                    self._failed,
                    hint,
                )
                return False
            sock.setblocking(False)
            engine = SnmpEngine()
            transport = (udp6.Udp6AsyncioTransport if six else udp.UdpAsyncioTransport)()
            config.add_transport(
                engine, udp6.DOMAIN_NAME if six else udp.DOMAIN_NAME, transport.open_server_mode(sock=sock)
            )
            ntfrcv.NotificationReceiver(engine, self._received)
            self._engine, self._sock = engine, sock
            self._apply()
            log.info("SNMP traps: listening on udp %s:%d", self.config.listen, self.config.port)
            return True

    def _received(
        self,
        engine: Any,
        state_reference: Any,
        _context_engine: Any,
        _context: Any,
        var_binds: Any,
        _ctx: Any,
    ) -> None:
        self.received += 1
        try:
            _domain, address = engine.message_dispatcher.get_transport_info(state_reference)
            trap = decode(str(address[0]), [(tuple(name), value) for name, value in var_binds])
        except Exception:  # a malformed notification must not stop the receiver
            log.exception("SNMP traps: cannot read a notification")
            return
        if trap is None:
            return
        self.understood += 1
        listeners = list(self._listeners.get(trap.source, ()))
        if not listeners:
            log.debug("SNMP traps: %s from %s, which no check polls", trap.kind, trap.source)
        for listener in listeners:
            listener(trap)

    def listening(self, address: str) -> bool:
        """Whether traps from ``address`` are being handed to some check."""
        return self._engine is not None and bool(self._listeners.get(address))

    async def serve(self, address: str, listener: Listener) -> None:
        """Hand ``listener`` the traps from ``address`` until cancelled (returns at once if not listening)."""
        if not await self.start():
            return
        self._listeners.setdefault(address, []).append(listener)
        try:
            await asyncio.Event().wait()
        finally:
            self._listeners[address].remove(listener)

    def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close_dispatcher()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


#: The receiver every snmp check of the agent shares.
RECEIVER = ResourceKey[TrapReceiver]("snmp.traps")
