"""Talking to one switch: GET and column walks over pysnmp 7 (asyncio), values turned into plain Python.

A ``Session`` is the driver's I/O seam: ``get`` answers the values of some OIDs in order (``None`` for an
object the switch does not have), ``walk`` the rows of one column as (index, value). Integers of every SMI
type come back as ``int``, strings as ``bytes``, OIDs as dotted ``str``. ``FakeSession`` (``fake.py``) is a
switch in a dict, for tests.

**Engines.** An ``SnmpEngine`` holds a UDP socket and the SNMPv3 state, including the USM user table, which
is keyed by user name (and engine id): two switches with the same v3 user name and different keys would
overwrite each other's keys in one engine, and every poll of one would make the other fail. An engine also
costs memory (about 0.8 MB each, 2.5 MB for the first: its own copy of the MIB modules it runs on). So probes
share an engine unless their credentials conflict: an engine holds at most one set of keys per v3 user name
(``security_key``), v2c communities go with any. Fifty switches polled as one user with one set of keys, or
as fifty users, take one engine; the same user with two sets of keys, two. An engine belongs to the event
loop that made it.
"""

import asyncio
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.drivers.snmp import ciphers
from agent.drivers.snmp.options import SnmpOptions
from agent.errors import AgentError

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UdpTransportTarget

Value = int | bytes | str | None
Index = tuple[int, ...]


class SnmpReadError(AgentError):
    """A reason the switch gave no usable answer; becomes the result's detail (inconclusive)."""


class Session(Protocol):
    """What the probe asks of a switch."""

    async def get(self, oids: Sequence[str]) -> list[Value]: ...
    async def walk(self, column: str) -> list[tuple[Index, Value]]: ...
    async def address(self) -> str | None:
        """The switch's resolved IP address (traps come from it), or None when it cannot be resolved."""
        ...


@dataclass
class _Engine:
    """An engine and the v3 users it has keys for: user name -> ``security_key``."""

    engine: "SnmpEngine"
    users: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def takes(self, key: tuple[str, ...]) -> bool:
        """Whether credentials ``key`` fit in this engine without replacing another probe's keys."""
        return key[0] != "v3" or self.users.get(key[1], key) == key


_ENGINES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Engine]]" = weakref.WeakKeyDictionary()


def security_key(options: SnmpOptions) -> tuple[str, ...]:
    """What an engine must hold for a probe: ``("v2c",)`` (communities never collide), or ``"v3"``, the user
    name, its protocols and keys; two keys with one user name and different keys cannot share an engine."""
    return ("v2c",) if options.version == "2c" else ("v3", *options.security_key())


def engine(key: tuple[str, ...] = ("v2c",)) -> "SnmpEngine":
    """The running loop's first engine that takes credentials ``key``; a new one when none does."""
    ciphers.install()
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    engines = _ENGINES.setdefault(asyncio.get_running_loop(), [])
    found = next((candidate for candidate in engines if candidate.takes(key)), None)
    if found is None:
        found = _Engine(SnmpEngine())
        engines.append(found)
    if key[0] == "v3":
        found.users[key[1]] = key
    return found.engine


def engine_count() -> int:
    """How many engines the running loop has (one more for each conflicting set of v3 keys)."""
    return len(_ENGINES.get(asyncio.get_running_loop(), []))


def close_engine() -> None:
    """Close the running loop's engines (sockets and timers); the next poll opens anew."""
    for found in _ENGINES.pop(asyncio.get_running_loop(), []):
        found.engine.close_dispatcher()


def auth_data(options: SnmpOptions) -> Any:
    ciphers.install()
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData

    if options.version == "2c":
        assert options.community is not None
        # Many switches offer only v2c; v3 is supported, and what a user asks for is what is used.
        return CommunityData(options.community.get_secret_value(), mpModel=1)  # noqa: S508
    return UsmUserData(options.user, **usm_arguments(options))  # noqa: S509


def usm_arguments(keys: Any) -> dict[str, Any]:
    """The keys and protocols of a ``UsmKeys`` as pysnmp's ``UsmUserData`` and ``add_v3_user`` take them."""
    ciphers.install()
    from pysnmp.hlapi.v3arch.asyncio import auth as a

    auth_protocols = {
        "md5": a.usmHMACMD5AuthProtocol,
        "sha": a.usmHMACSHAAuthProtocol,
        "sha224": a.usmHMAC128SHA224AuthProtocol,
        "sha256": a.usmHMAC192SHA256AuthProtocol,
        "sha384": a.usmHMAC256SHA384AuthProtocol,
        "sha512": a.usmHMAC384SHA512AuthProtocol,
    }
    priv_protocols = {
        "des": a.usmDESPrivProtocol,
        "3des": a.usm3DESEDEPrivProtocol,
        "aes": a.usmAesCfb128Protocol,
        "aes192": a.usmAesCfb192Protocol,
        "aes256": a.usmAesCfb256Protocol,
    }
    return {
        "authKey": keys.auth_key.get_secret_value() if keys.auth_key else None,
        "privKey": keys.priv_key.get_secret_value() if keys.priv_key else None,
        "authProtocol": auth_protocols[keys.auth_protocol] if keys.auth_protocol else a.usmNoAuthProtocol,
        "privProtocol": priv_protocols[keys.priv_protocol] if keys.priv_protocol else a.usmNoPrivProtocol,
    }


def error_reason(indication: Any, options: SnmpOptions) -> str:
    from pysnmp.proto import errind

    attempts = options.retries + 1
    if isinstance(indication, errind.RequestTimedOut):
        # A switch drops a request with the wrong community or one it cannot decrypt without a word.
        if options.version == "2c":
            hint = "switch down or unreachable, or wrong community"
        elif options.priv_key:
            hint = "switch down or unreachable, or wrong privacy key"
        else:
            hint = "switch down or unreachable"
        return f"no answer within {options.timeout:g} s x{attempts} ({hint})"
    if isinstance(indication, errind.UnknownUserName):
        return f"SNMPv3 user {options.user!r} unknown to the switch"
    if isinstance(indication, errind.WrongDigest | errind.AuthenticationFailure | errind.AuthenticationError):
        return "SNMPv3 authentication failed (wrong auth key or protocol)"
    if isinstance(indication, errind.DecryptionError):
        return "SNMPv3 decryption failed (wrong privacy key or protocol)"
    if isinstance(indication, errind.UnsupportedSecurityLevel):
        return "SNMPv3 security level not accepted for this user"
    if isinstance(indication, errind.NotInTimeWindow):
        return "SNMPv3 message outside the switch's time window"
    if isinstance(indication, errind.ReportPduReceived) and options.context:
        return f"SNMPv3 report from the switch ({indication}): is context {options.context!r} known to it?"
    return f"SNMP error: {indication}"


def plain(value: Any) -> Value:
    """A pysnmp value as plain Python: int, bytes, dotted str; None for noSuchObject/Instance/endOfMibView."""
    from pyasn1.type.univ import Integer, ObjectIdentifier, OctetString
    from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

    if isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView):
        return None
    if isinstance(value, Integer):  # Integer32, Gauge32, Counter32, TimeTicks, Unsigned32, Counter64
        return int(value)
    if isinstance(value, OctetString):  # also IpAddress, Opaque
        return bytes(value)
    if isinstance(value, ObjectIdentifier):
        return ".".join(str(part) for part in value)
    return int(value)  # anything else numeric; a type we cannot read raises, which the probe reports


class PysnmpSession:
    """A ``Session`` over pysnmp, one per probe: its transport target, credentials and context."""

    def __init__(self, options: SnmpOptions) -> None:
        self.options = options
        self._auth = auth_data(options)
        self._key = security_key(options)
        self._transport: UdpTransportTarget | None = None

    def _context(self) -> Any:
        from pysnmp.hlapi.v3arch.asyncio import ContextData

        return ContextData(contextName=self.options.context or "")

    async def _target(self) -> "UdpTransportTarget":
        from pysnmp.error import PySnmpError
        from pysnmp.hlapi.v3arch.asyncio import Udp6TransportTarget, UdpTransportTarget

        if self._transport is None:
            options = self.options
            kind = Udp6TransportTarget if ":" in options.host else UdpTransportTarget  # an IPv6 literal
            try:
                async with asyncio.timeout(options.timeout):  # a name server that hangs holds no poll
                    self._transport = await kind.create(
                        (options.host, options.port), timeout=options.timeout, retries=options.retries
                    )
            except TimeoutError:
                raise SnmpReadError(f"cannot resolve switch address {options.host!r}: no answer") from None
            except PySnmpError:
                raise SnmpReadError(f"cannot resolve switch address {options.host!r}") from None
        return self._transport

    async def address(self) -> str | None:
        try:
            target = await self._target()
        except SnmpReadError:
            return None
        return str(target.transport_address[0])

    async def get(self, oids: Sequence[str]) -> list[Value]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, get_cmd

        request = [ObjectType(ObjectIdentity(oid)) for oid in oids]
        transport = await self._target()
        try:
            indication, status, index, var_binds = await get_cmd(
                engine(self._key), self._auth, transport, self._context(), *request, lookupMib=False
            )
        except Exception as exc:  # noqa: BLE001  (pysnmp raises assorted errors on malformed exchanges)
            raise SnmpReadError(f"SNMP error: {exc}") from None
        if indication:
            raise SnmpReadError(error_reason(indication, self.options))
        if status:
            where = f" at {var_binds[int(index) - 1][0]}" if index and int(index) <= len(var_binds) else ""
            raise SnmpReadError(f"switch answered {status.prettyPrint()}{where}")
        return [plain(value) for _name, value in var_binds]

    async def walk(self, column: str) -> list[tuple[Index, Value]]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType, bulk_walk_cmd

        prefix = tuple(int(part) for part in column.split("."))
        rows: list[tuple[Index, Value]] = []
        walk = bulk_walk_cmd(
            engine(self._key),
            self._auth,
            await self._target(),
            self._context(),
            0,
            25,
            ObjectType(ObjectIdentity(column)),
            lookupMib=False,
            lexicographicMode=False,
        )
        problem = None
        try:
            async for indication, status, _index, var_binds in walk:
                if indication:
                    problem = error_reason(indication, self.options)
                    break
                if status:
                    problem = f"switch answered {status.prettyPrint()} walking {column}"
                    break
                for name, value in var_binds:
                    oid = tuple(name)
                    if oid[: len(prefix)] != prefix:
                        continue
                    found = plain(value)
                    if found is not None:
                        rows.append((oid[len(prefix) :], found))
        except Exception as exc:  # noqa: BLE001  (as for get)
            raise SnmpReadError(f"SNMP error walking {column}: {exc}") from None
        if problem is not None:
            raise SnmpReadError(problem)
        return rows
