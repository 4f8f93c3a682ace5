"""The snmp driver's settings: a check's options, and the agent-level ``snmp:`` section (the trap receiver).

Both are validated at start-up without I/O; errors name the key and what is expected.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

#: CISCO-POWER-ETHERNET-EXT-MIB cpeExtPsePortPwrConsumption, milliwatts, indexed like pethPsePortTable.
DEFAULT_POWER_OID = "1.3.6.1.4.1.9.9.402.1.2.1.9"

AuthProtocol = Literal["md5", "sha", "sha224", "sha256", "sha384", "sha512"]
PrivProtocol = Literal["des", "3des", "aes", "aes192", "aes256"]
V3_KEYS = ("user", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "context")


def numeric_oid(value: str) -> str:
    """``value`` without leading or trailing dots, or ``ValueError`` when it is not a numeric OID."""
    value = value.strip(".")
    parts = value.split(".")
    if len(parts) < 2 or not all(p.isdigit() for p in parts):
        raise ValueError("expected a numeric OID such as 1.3.6.1.4.1.9.9.402.1.2.1.9")
    return value


class UsmKeys(BaseModel):
    """An SNMPv3 user and its keys (RFC 3414): the same rules for polling and for traps."""

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(None, min_length=1, description="SNMPv3 user name (version 3)")
    auth_protocol: AuthProtocol | None = None
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol | None = None
    priv_key: SecretStr | None = None

    def _check_keys(self) -> None:
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

    def security_key(self) -> tuple[str, ...]:
        """What tells two sets of credentials apart (secrets included: it never leaves the process)."""
        return (
            self.user or "",
            self.auth_protocol or "",
            self.auth_key.get_secret_value() if self.auth_key else "",
            self.priv_protocol or "",
            self.priv_key.get_secret_value() if self.priv_key else "",
        )


class SnmpOptions(UsmKeys):
    driver: Literal["snmp"]
    host: str = Field(min_length=1, description="the switch's IPv4 or IPv6 address, or its name (IPv4)")
    port: int = Field(161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    community: SecretStr | None = Field(None, description="SNMPv2c community (version 2c)")
    context: str | None = Field(None, max_length=32, description="SNMPv3 context name (version 3)")
    if_index: int | None = Field(None, ge=1, description="the switch port's ifIndex")
    if_name: str | None = Field(
        None, min_length=1, description="or its ifName, ifDescr or ifAlias (any case), looked up once"
    )
    poe: bool = Field(True, description="check the port's PoE status; false for a device with its own supply")
    poe_group: int | None = Field(
        None, ge=0, description="pethPsePortGroupIndex (the stack member); default: found, 1 with poe_port"
    )
    poe_port: int | None = Field(None, ge=1, description="pethPsePortIndex; default: found from the port")
    power_oid: str | None = Field(DEFAULT_POWER_OID, description="per-port power in mW; null to skip")
    timeout: float = Field(2.0, gt=0, le=60, description="seconds to wait for each answer")
    retries: int = Field(1, ge=0, le=5)

    @field_validator("power_oid")
    @classmethod
    def _numeric_oid(cls, value: str | None) -> str | None:
        return None if value is None else numeric_oid(value)

    @model_validator(mode="after")
    def _consistent(self) -> "SnmpOptions":
        if (self.if_index is None) == (self.if_name is None):
            raise ValueError("give exactly one of if_index and if_name")
        if self.version == "2c":
            if self.community is None:
                raise ValueError("version 2c needs a community")
            v3 = [k for k in V3_KEYS if getattr(self, k)]
            if v3:
                raise ValueError(f"{', '.join(v3)}: only for version 3")
            return self
        if self.community is not None:
            raise ValueError("community is only for version 2c")
        if self.user is None:
            raise ValueError("version 3 needs a user")
        self._check_keys()
        return self

    def port_label(self) -> str:
        return self.if_name or f"ifIndex {self.if_index}"


class TrapUser(UsmKeys):
    """An SNMPv3 user a switch sends notifications as."""

    user: str = Field(min_length=1, description="SNMPv3 user name")
    engine_id: str | None = Field(
        None,
        description="the sending switch's snmpEngineID in hex (traps); none: this agent's own (informs)",
    )

    @field_validator("engine_id")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = value.lower().removeprefix("0x").replace(":", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise ValueError("expected the engine id in hex, such as 800000090300f47f3593af81") from None
        if not 5 <= len(raw) <= 32:
            raise ValueError("an snmpEngineID is 5 to 32 bytes (RFC 3411)")
        return text

    @model_validator(mode="after")
    def _keys(self) -> "TrapUser":
        self._check_keys()
        return self


class TrapsConfig(BaseModel):
    """Where the agent listens for the switches' notifications (linkDown, linkUp, PoE on/off)."""

    model_config = ConfigDict(extra="forbid")

    listen: str = Field("0.0.0.0", min_length=1, description="address to listen on (IPv4 or IPv6)")  # noqa: S104  (switches send from the LAN)
    port: int = Field(162, ge=1, le=65535, description="UDP port; 162 is the standard one")
    communities: list[SecretStr] = Field(
        default_factory=list, description="SNMPv2c communities accepted, besides those of the snmp checks"
    )
    users: list[TrapUser] = Field(
        default_factory=list, description="SNMPv3 users accepted, besides those of the snmp checks"
    )
    hold: float = Field(
        10.0, gt=0, le=300, description="seconds a trap counts as a second witness of what the check reads"
    )


class SnmpAgentConfig(BaseModel):
    """The agent-level ``snmp:`` section: what every snmp check of the agent shares."""

    model_config = ConfigDict(extra="forbid")

    traps: TrapsConfig | None = Field(None, description="listen for the switches' notifications")
