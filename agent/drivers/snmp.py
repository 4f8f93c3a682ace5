"""``snmp``: the PoE switch port a device hangs on. Link and power on the port say whether it is there.

Logitech's room devices speak no SNMP themselves; the switch port that powers a Tap IP or a Rally Bar does.
One GET per poll reads, by numeric OID (no MIB is loaded):

- ``sysUpTime.0`` (1.3.6.1.2.1.1.3.0): the switch's uptime, reported as metric ``uptime_s`` so the poller
  sees a switch restart as a ``reboot`` event;
- ``sysDescr.0`` (1.3.6.1.2.1.1.1.0): the switch's description, reported as fact ``firmware`` (most switches
  put their software version there) so an upgrade shows as a ``firmware-changed`` event;
- IF-MIB ``ifAdminStatus`` / ``ifOperStatus`` (1.3.6.1.2.1.2.2.1.7 / .8) of the port;
- POWER-ETHERNET-MIB ``pethPsePortDetectionStatus`` (1.3.6.1.2.1.105.1.1.1.6.GROUP.PORT), if ``poe``;
- the power drawn on the port, in milliwatts (metric ``power_mw``). The standard POWER-ETHERNET-MIB has no
  per-port power, so the OID is configurable (``power_oid``, indexed by GROUP.PORT); the default is Cisco's
  ``cpeExtPsePortPwrConsumption`` (CISCO-POWER-ETHERNET-EXT-MIB, 1.3.6.1.4.1.9.9.402.1.2.1.9, mW), the most
  common one. A switch without it simply reports no ``power_mw``.

Verdict: link not up -> down; PoE checked and the port not delivering power (disabled, searching, test) ->
down; PoE ``fault``/``otherFault`` while the link is up -> up but ``degraded`` (the device runs, its power
is at risk); otherwise up. A dead switch, a wrong community (the switch stays silent, so it reads as a
timeout), an SNMPv3 authentication failure or an unknown port are each a failed result with the reason.

All probes of one event loop share one ``SnmpEngine``, created on first use.
"""

import asyncio
import weakref
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from agent.drivers.base import CheckResult, Stopwatch, TimedResults
from agent.errors import AgentError

if TYPE_CHECKING:
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine, UdpTransportTarget

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
IF_ADMIN_STATUS = "1.3.6.1.2.1.2.2.1.7"
IF_OPER_STATUS = "1.3.6.1.2.1.2.2.1.8"
IF_NAME = "1.3.6.1.2.1.31.1.1.1.1"
PETH_DETECTION_STATUS = "1.3.6.1.2.1.105.1.1.1.6"
#: CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortPwrConsumption, milliwatts, indexed like pethPsePortTable.
DEFAULT_POWER_OID = "1.3.6.1.4.1.9.9.402.1.2.1.9"

IF_STATUS = {
    1: "up",
    2: "down",
    3: "testing",
    4: "unknown",
    5: "dormant",
    6: "notPresent",
    7: "lowerLayerDown",
}
POE_STATUS = {1: "disabled", 2: "searching", 3: "deliveringPower", 4: "fault", 5: "test", 6: "otherFault"}
POE_DELIVERING = 3
POE_FAULTS = (4, 6)
FIRMWARE_MAX = 200

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "3des", "aes", "aes192", "aes256"]


class SnmpOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    driver: Literal["snmp"]
    host: str = Field(min_length=1, description="the switch's IPv4 or IPv6 address, or its name (IPv4)")
    port: int = Field(161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    community: SecretStr | None = Field(None, description="SNMPv2c community (version 2c)")
    user: str | None = Field(None, min_length=1, description="SNMPv3 user name (version 3)")
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None
    if_index: int | None = Field(None, ge=1, description="the switch port's ifIndex")
    if_name: str | None = Field(None, min_length=1, description="or its ifName, looked up once")
    poe: bool = Field(True, description="check the port's PoE status; false for a device with its own supply")
    poe_group: int = Field(1, ge=1, description="pethPsePortGroupIndex (the stack member)")
    poe_port: int | None = Field(None, ge=1, description="pethPsePortIndex; default: the ifIndex")
    power_oid: str | None = Field(DEFAULT_POWER_OID, description="per-port power in mW; null to skip")
    timeout: float = Field(2.0, gt=0, le=60, description="seconds to wait for each answer")
    retries: int = Field(1, ge=0, le=5)

    @field_validator("power_oid")
    @classmethod
    def _numeric_oid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip(".")
        parts = value.split(".")
        if len(parts) < 2 or not all(p.isdigit() for p in parts):
            raise ValueError("expected a numeric OID such as 1.3.6.1.4.1.9.9.402.1.2.1.9")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "SnmpOptions":
        if (self.if_index is None) == (self.if_name is None):
            raise ValueError("give exactly one of if_index and if_name")
        if self.version == "2c":
            if self.community is None:
                raise ValueError("version 2c needs a community")
            v3 = [
                k
                for k in ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key")
                if getattr(self, k)
            ]
            if v3:
                raise ValueError(f"{', '.join(v3)}: only for version 3")
            return self
        if self.community is not None:
            raise ValueError("community is only for version 2c")
        if self.user is None:
            raise ValueError("version 3 needs a user")
        for kind in ("auth", "priv"):
            protocol, key = getattr(self, f"{kind}_protocol"), getattr(self, f"{kind}_key")
            if (protocol is None) != (key is None):
                raise ValueError(f"{kind}_protocol and {kind}_key go together")
            if key is not None and len(key.get_secret_value()) < 8:
                raise ValueError(f"{kind}_key: at least 8 characters (RFC 3414)")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError(
                "priv_protocol needs auth_protocol (SNMPv3 has no privacy without authentication)"
            )
        return self


# One engine per event loop, shared by every probe: an engine holds the UDP socket and the
# SNMPv3 state, and creating one costs far more than a request.
_ENGINES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SnmpEngine]" = weakref.WeakKeyDictionary()


def engine() -> "SnmpEngine":
    """The running loop's shared ``SnmpEngine``."""
    from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

    loop = asyncio.get_running_loop()
    found = _ENGINES.get(loop)
    if found is None:
        found = _ENGINES[loop] = SnmpEngine()
    return found


def close_engine() -> None:
    """Close the running loop's shared engine (socket and timer) if it has one; the next poll opens anew."""
    loop = asyncio.get_running_loop()
    found = _ENGINES.pop(loop, None)
    if found is not None:
        found.close_dispatcher()


def _auth_data(options: SnmpOptions) -> Any:
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData
    from pysnmp.hlapi.v3arch.asyncio import auth as a

    if options.version == "2c":
        assert options.community is not None
        return CommunityData(options.community.get_secret_value(), mpModel=1)  # noqa: S508  (many switches offer only v2c; v3 is supported)
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
    return UsmUserData(
        options.user,
        authKey=options.auth_key.get_secret_value() if options.auth_key else None,
        privKey=options.priv_key.get_secret_value() if options.priv_key else None,
        authProtocol=auth_protocols[options.auth_protocol] if options.auth_protocol else None,
        privProtocol=priv_protocols[options.priv_protocol] if options.priv_protocol else None,
    )


class SnmpReadError(AgentError):
    """A reason the switch gave no usable answer; becomes the result's detail."""


def _error_reason(indication: Any, options: SnmpOptions) -> str:
    from pysnmp.proto import errind

    attempts = options.retries + 1
    if isinstance(indication, errind.RequestTimedOut):
        # A switch drops a request with the wrong community or one it cannot decrypt without a word.
        silent = "wrong community" if options.version == "2c" else "wrong privacy key"
        hint = (
            f"switch down or unreachable, or {silent}" if options.version == "2c" or options.priv_key else ""
        )
        hint = hint or "switch down or unreachable"
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
    return f"SNMP error: {indication}"


def _absent(value: Any) -> bool:
    from pysnmp.proto.rfc1905 import EndOfMibView, NoSuchInstance, NoSuchObject

    return isinstance(value, NoSuchObject | NoSuchInstance | EndOfMibView)


class SnmpProbe(TimedResults):
    driver = "snmp"

    def __init__(self, options: SnmpOptions) -> None:
        self.options = options
        self.target = f"snmp://{options.host}:{options.port}/{options.if_name or options.if_index}"
        self._auth = _auth_data(options)
        self._transport: UdpTransportTarget | None = None
        self._if_index = options.if_index
        self._oids: list[Any] | None = None

    async def poll(self) -> CheckResult:
        watch = Stopwatch()
        try:
            values = await self._read()
        except SnmpReadError as exc:
            return self._result(False, str(exc), watch)
        try:
            return self._judge(values, watch)
        except (TypeError, ValueError) as exc:  # a value of the wrong type, e.g. a string for ifOperStatus
            return self._result(False, f"unexpected answer from the switch: {exc}", watch)

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

    async def _resolve_if_name(self) -> int:
        """The ifIndex of ``if_name``, walked once in ifName and then remembered."""
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType, bulk_walk_cmd

        assert self.options.if_name is not None
        walk = bulk_walk_cmd(
            engine(),
            self._auth,
            await self._target(),
            ContextData(),
            0,
            25,
            ObjectType(ObjectIdentity(IF_NAME)),
            lookupMib=False,
            lexicographicMode=False,
        )
        async for indication, status, _index, var_binds in walk:
            if indication:
                raise SnmpReadError(_error_reason(indication, self.options))
            if status:
                raise SnmpReadError(f"switch answered {status.prettyPrint()} walking ifName")
            for name, value in var_binds:
                if _absent(value):
                    continue
                if str(value) == self.options.if_name:
                    return int(tuple(name)[-1])
        raise SnmpReadError(f"no interface named {self.options.if_name!r} on the switch")

    def _request(self, if_index: int) -> list[Any]:
        from pysnmp.hlapi.v3arch.asyncio import ObjectIdentity, ObjectType

        options = self.options
        poe_index = f"{options.poe_group}.{options.poe_port or if_index}"
        oids = [SYS_UPTIME, SYS_DESCR, f"{IF_ADMIN_STATUS}.{if_index}", f"{IF_OPER_STATUS}.{if_index}"]
        if options.poe:
            oids.append(f"{PETH_DETECTION_STATUS}.{poe_index}")
            if options.power_oid:
                oids.append(f"{options.power_oid}.{poe_index}")
        return [ObjectType(ObjectIdentity(oid)) for oid in oids]

    async def _read(self) -> list[Any]:
        """One GET for every OID of the port; the values in request order."""
        from pysnmp.hlapi.v3arch.asyncio import ContextData, get_cmd

        if self._if_index is None:
            self._if_index = await self._resolve_if_name()
        if self._oids is None:
            self._oids = self._request(self._if_index)
        transport = await self._target()
        try:
            indication, status, index, var_binds = await get_cmd(
                engine(), self._auth, transport, ContextData(), *self._oids, lookupMib=False
            )
        except Exception as exc:  # noqa: BLE001  (pysnmp raises assorted errors on malformed exchanges)
            raise SnmpReadError(f"SNMP error: {exc}") from None
        if indication:
            raise SnmpReadError(_error_reason(indication, self.options))
        if status:
            where = f" at {var_binds[int(index) - 1][0]}" if index and int(index) <= len(var_binds) else ""
            raise SnmpReadError(f"switch answered {status.prettyPrint()}{where}")
        return [value for _name, value in var_binds]

    def _judge(self, values: list[Any], watch: Stopwatch) -> CheckResult:
        options = self.options
        uptime, descr, admin, oper = values[:4]
        port = options.if_name or f"ifIndex {self._if_index}"
        if _absent(oper) or _absent(admin):
            return self._result(False, f"no port {port} on the switch", watch)
        metrics: dict[str, float] = {"snmp.duration_ms": watch.ms()}
        facts: dict[str, str] = {}
        if not _absent(uptime):
            metrics["uptime_s"] = int(uptime) / 100.0
        if not _absent(descr):
            text = bytes(descr).decode("utf-8", "replace").strip()
            if text:
                facts["firmware"] = text[:FIRMWARE_MAX]
        oper_name = IF_STATUS.get(int(oper), str(int(oper)))
        admin_name = IF_STATUS.get(int(admin), str(int(admin)))
        link_up = int(oper) == 1
        poe_text = ""
        poe_status: int | None = None
        if options.poe:
            detection = values[4]
            poe_where = f"{options.poe_group}.{options.poe_port or self._if_index}"
            if _absent(detection):
                return self._result(False, f"no PoE port {poe_where} on the switch", watch, metrics=metrics)
            poe_status = int(detection)
            poe_text = f", PoE {POE_STATUS.get(poe_status, str(poe_status))}"
            if options.power_oid and not _absent(values[5]):
                metrics["power_mw"] = float(int(values[5]))
        state = f"port {port} link {oper_name}{poe_text}"
        if int(admin) != 1:
            return self._result(False, f"{state}: port administratively {admin_name}", watch, metrics=metrics)
        if not link_up:
            return self._result(False, state, watch, metrics=metrics, facts=facts)
        if poe_status is not None and poe_status in POE_FAULTS:
            return self._result(
                True,
                f"{state}: PoE fault while the link is up",
                watch,
                degraded=True,
                metrics=metrics,
                facts=facts,
            )
        if poe_status is not None and poe_status != POE_DELIVERING:
            return self._result(False, f"{state}: not delivering power", watch, metrics=metrics, facts=facts)
        return self._result(True, state, watch, metrics=metrics, facts=facts)


def build(options: SnmpOptions) -> SnmpProbe:
    return SnmpProbe(options)
